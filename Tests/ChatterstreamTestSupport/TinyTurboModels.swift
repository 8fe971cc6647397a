import ChatterTensor
import Foundation
import TestSupport
import ChatterModels
import Chatterstream

/// A small Turbo engine from the committed fixtures: the tiny GPT-2 T3 of `t3/turbo_tiny` (its text
/// table widened to the real Turbo tokenizer's 50,276 ids and its position table to 256), the reduced
/// meanflow flow of `s3gen/flow_meanflow` with the reduced HiFT of `s3gen/e2e`, the real GPT-2 BPE
/// tokenizer with its tags, and a built-in voice from the fixtures' prompts.
package enum TinyTurboModels {
    package static let t3Fixture = try! Fixture("t3/turbo_tiny")
    package static let flowFixture = try! Fixture("s3gen/flow_meanflow")
    package static let positions = 256

    package static var t3Config: T3Config {
        let tiny = t3Fixture.cases.first { $0.name == "tiny" }!
        return T3Config(backbone: .gpt2(maxPositions: positions), hiddenSize: tiny.int("hidden"),
                        layers: tiny.int("layers"), heads: tiny.int("heads"), headDim: tiny.int("head_dim"),
                        intermediateSize: tiny.int("intermediate"), textVocabularySize: 50_276,
                        speechVocabularySize: tiny.int("speech_vocab"), startSpeechToken: tiny.int("start_speech"),
                        stopSpeechToken: tiny.int("stop_speech"), maxTextTokens: 1024,
                        speakerEmbeddingSize: tiny.int("speaker_size"), learnedTokenPositions: false,
                        perceiverResampler: false, emotionConditioning: false, speechPromptLength: tiny.int("prompt_length"))
    }

    package static func make() throws -> SpeechModels {
        let config = t3Config
        let t3 = try T3(weights: OverlayWeights(base: t3Fixture.file.scoped("tiny.w."), overrides: [
            "text_emb.weight": TinySpeechModels.random([50_276, config.hiddenSize], seed: 3, scale: 1),
            "tfmr.wpe.weight": TinySpeechModels.random([positions, config.hiddenSize], seed: 4, scale: 0.1),
            // EOS made unlikely, so the random model speaks long enough to make several chunks.
            "speech_head.bias": Tensor(shape: [config.speechVocabularySize],
                                       scalars: (0..<config.speechVocabularySize).map { $0 == config.stopSpeechToken ? -12 : 0 }),
        ]), config: config)
        let flow = flowFixture.file.scoped("model.")
        let width = try flow.tensor("flow.input_embedding.weight").shape[1]
        let weights = OverlayWeights(base: TinySpeechModels.s3genFixture.file.scoped("model."), overrides: [
            // S3Gen's full 6,561-token table: the appended silence token (4299) must be in range.
            "flow.input_embedding.weight": TinySpeechModels.random([6_561, width], seed: 5, scale: 1),
        ])
        // flow.* from the meanflow fixture (all but the widened token table), mel2wav.* from e2e's.
        let s3gen = try S3Gen(weights: FlowFirst(flow: flow, rest: weights),
                              decoderHeads: flowFixture.case("model")!.int("dec_heads"), vocoder: TinySpeechModels.hift)
        let tiny = t3Fixture.cases.first { $0.name == "tiny" }!
        let voice = try Conditionals(store: InMemoryWeights([
            "t3.speaker_emb": try t3Fixture.tensor(tiny, "speaker_emb"),
            "t3.cond_prompt_speech_tokens": try t3Fixture.tensor(tiny, "prompt_tokens").reshaped([1, config.speechPromptLength]),
            "gen.prompt_token": try flowFixture.tensor("mel", "prompt_token"),
            "gen.prompt_feat": try flowFixture.tensor("mel", "prompt_feat"),
            "gen.embedding": try flowFixture.tensor("mel", "embedding"),
        ]), family: .chatterboxTurbo)
        let tokenizer = try TurboTokenizer(directory: Fixture.root.appendingPathComponent("../Assets/tokenizers/chatterbox-turbo").standardized)
        let variant = ModelVariant.chatterboxTurbo.resized(t3: config, s3genDecoderHeads: flowFixture.case("model")!.int("dec_heads"),
                                                           vocoder: TinySpeechModels.hift)
        return SpeechModels(variant: variant, frontEnd: tokenizer, t3: t3, s3gen: s3gen, builtinVoice: voice)
    }

    /// `flow.*` keys from `flow` except what `rest` overrides; everything else from `rest`.
    struct FlowFirst: WeightStore {
        let flow: any WeightStore
        let rest: OverlayWeights
        var source: String { flow.source }
        func contains(_ key: String) -> Bool { rest.overrides[key] != nil || (key.hasPrefix("flow.") ? flow.contains(key) : rest.contains(key)) }
        func tensor(_ key: String) throws -> Tensor {
            if let t = rest.overrides[key] { return t }
            return key.hasPrefix("flow.") ? try flow.tensor(key) : try rest.tensor(key)
        }
    }

    package static var config: SynthesisOptions { TinySpeechModels.testConfig(maxLength: 40, seed: 11) }
}
