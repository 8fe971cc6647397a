import ChatterTensor
import Foundation
import TestSupport
import ChatterModels
import Chatterstream

/// A complete, small engine for pipeline tests, from the committed fixtures: the tiny T3 of
/// `t3/tiny` (its text table widened to the real English tokenizer's 704 ids) and the reduced S3Gen
/// of `s3gen/e2e` (its token table widened to T3's 198 speech ids), the real English tokenizer, and
/// a built-in voice from the fixtures' prompts. Random weights: the audio is noise-like, but every
/// stage of the pipeline runs as it does at full size.
package enum TinySpeechModels {
    package static func random(_ shape: [Int], seed: UInt64, scale: Float = 0.05) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in (rng.nextFloat() * 2 - 1) * scale })
    }

    package static let t3Fixture = try! Fixture("t3/tiny")
    package static let s3genFixture = try! Fixture("s3gen/e2e")

    package static var t3Config: T3Config {
        let tiny = t3Fixture.cases.first { $0.name == "tiny" }!
        return T3Config(hiddenSize: tiny.int("hidden"), layers: tiny.int("layers"), heads: tiny.int("heads"),
                              headDim: tiny.int("head_dim"), intermediateSize: tiny.int("intermediate"),
                              textVocabularySize: textVocabulary, speechVocabularySize: tiny.int("speech_vocab"),
                              startSpeechToken: tiny.int("start_speech"), stopSpeechToken: tiny.int("stop_speech"),
                              maxTextTokens: tiny.int("max_text_tokens"), maxSpeechTokens: tiny.int("max_speech_tokens"),
                              speakerEmbeddingSize: tiny.int("speaker_size"), perceiverQueries: tiny.int("perceiver_queries"),
                              perceiverHeads: tiny.int("perceiver_heads"))
    }

    package static let textVocabulary = 704

    /// The tiny T3's upstream weights, text table widened to the English tokenizer.
    package static var t3Weights: OverlayWeights {
        OverlayWeights(base: t3Fixture.file.scoped("tiny.w."),
                       overrides: ["text_emb.weight": random([textVocabulary, t3Config.hiddenSize], seed: 1, scale: 1)])
    }

    package static var hift: HiFTConfig {
        let model = s3genFixture.case("model")!
        var hift = HiFTConfig.chatterbox
        hift.baseChannels = model.int("base_channels")
        hift.f0CondChannels = model.int("cond_channels")
        return hift
    }

    package static var decoderHeads: Int { s3genFixture.case("model")!.int("dec_heads") }

    /// The reduced S3Gen's upstream weights (`flow.*`, `mel2wav.*`), token table widened to T3's speech ids.
    package static var s3genWeights: OverlayWeights {
        let base = s3genFixture.file.scoped("model.")
        let width = try! base.tensor("flow.input_embedding.weight").shape[1]
        return OverlayWeights(base: base, overrides: [
            "flow.input_embedding.weight": random([t3Config.startSpeechToken, width], seed: 2, scale: 1),
        ])
    }

    package static var tokenizerURL: URL { Fixture.root.appendingPathComponent("tokenizers/chatterbox-en/tokenizer.json") }

    /// One engine's models for every test that needs no other (loading them takes a while).
    package static let shared = try! make()

    package static func make(watermarker: PerthWatermarker? = nil) throws -> SpeechModels {
        let t3 = try T3(weights: t3Weights, config: t3Config)
        let s3gen = try S3Gen(weights: s3genWeights, decoderHeads: decoderHeads, vocoder: hift)
        let voice = try builtinVoice()
        let tokenizer = try EnglishTokenizer(contentsOf: tokenizerURL)
        return SpeechModels(variant: ModelVariant.chatterbox.resized(t3: t3Config, s3genDecoderHeads: decoderHeads, vocoder: hift),
                            frontEnd: tokenizer, t3: t3, s3gen: s3gen, builtinVoice: voice, watermarker: watermarker)
    }

    /// Upstream `Conditionals` tensors of the built-in voice (as a converted model's conds.safetensors).
    package static func voiceTensors() throws -> [String: Tensor] {
        let tiny = t3Fixture.cases.first { $0.name == "tiny" }!
        let wave = s3genFixture.case("wave")!
        return [
            "t3.speaker_emb": try t3Fixture.tensor(tiny, "speaker_emb"),
            "t3.cond_prompt_speech_tokens": try t3Fixture.tensor(tiny, "prompt_tokens").reshaped([1, 10]),
            "gen.prompt_token": try s3genFixture.tensor(wave, "prompt_token"),
            "gen.prompt_feat": try s3genFixture.tensor(wave, "prompt_feat"),
            "gen.embedding": try s3genFixture.tensor(wave, "embedding"),
        ]
    }

    package static func builtinVoice() throws -> Conditionals {
        try Conditionals(store: InMemoryWeights(try voiceTensors()))
    }

    /// Writes every tensor of `store` under `keys` to a safetensors file.
    package static func write(_ store: some WeightStore, keys: [String], to url: URL) throws {
        try SafetensorsWriter.write(try keys.sorted().map { (name: $0, tensor: try store.tensor($0)) }, to: url.path)
    }

    /// Sampling that runs long enough to make several chunks, quickly: the CFM takes 2 steps.
    package static var config: SynthesisOptions { testConfig(maxLength: 50, seed: 7) }

    /// Small fixed chunks (10, then 15 tokens: `adaptive`, not the timing-dependent default `paced`)
    /// so a short utterance makes several, the same on every machine.
    package static func testConfig(maxLength: Int, seed: UInt64) -> SynthesisOptions {
        var c = SynthesisOptions()
        c.strategy = .adaptive
        c.firstChunkTokens = 10
        c.chunkTokens = 15
        c.maxTokens = maxLength
        c.seed = seed
        return c
    }
}
