import ChatterModels
import ChatterTensor
import Foundation

/// Speech-token generation for one family: a synchronous iterator per text piece.
protocol SpeechTokenModel: Sendable {
    /// Text tokens one piece may have.
    var maxTextTokens: Int { get }
    /// Speech tokens a piece may add after upstream's post-processing (ids ≥ start-of-speech dropped).
    /// With `prefixes`, the voice's conditioning prefix is taken from (or added to) that cache.
    func tokens(conditioning: Conditionals, textTokens: [Int], parameters: T3SamplingParameters,
                seed: UInt64, cancellation: T3Cancellation, prefixes: T3PrefixCache?) throws -> any SpeechTokenStream
}

/// How a piece's prefill got the conditioning rows.
enum PrefixUse: Sendable {
    /// Ran them as part of the full prefill (no prefix cache).
    case none
    /// Computed the prefix state and cached it.
    case built
    /// Copied a cached prefix state.
    case reused
}

/// One piece's generation: `next()` runs one decode step.
protocol SpeechTokenStream: AnyObject {
    /// The next speech token for S3Gen, nil when the piece is done; tokens S3Gen must not see (EOS,
    /// ids ≥ start-of-speech) are filtered out here.
    func nextSpeechToken() -> Int?
    /// Decode steps run so far (prefill excluded).
    var steps: Int { get }
    var prefixUse: PrefixUse { get }
}

/// T3 of either backbone: the original (Llama, CFG, `T3.inference`) or Turbo (GPT-2, one row,
/// `T3.inference_turbo`); `T3TokenIterator` runs the family's procedure.
struct T3SpeechTokenModel: SpeechTokenModel {
    let t3: T3
    var maxTextTokens: Int { t3.config.maxTextTokens }

    func tokens(conditioning: Conditionals, textTokens: [Int], parameters: T3SamplingParameters,
                seed: UInt64, cancellation: T3Cancellation, prefixes: T3PrefixCache?) throws -> any SpeechTokenStream {
        let speaker = conditioning.t3.speakerEmb, prompt = conditioning.t3.condPromptSpeechTokens ?? []
        let inputs = T3ConditioningInputs(config: t3.config, speakerEmbedding: speaker, promptTokens: prompt,
                                          exaggeration: parameters.exaggeration)
        let prefix = try prefixes?.prefix(model: t3, inputs: inputs)
        let iterator = try T3TokenIterator(model: t3, speakerEmbedding: speaker, promptTokens: prompt, textTokens: textTokens,
                                           parameters: parameters, prefix: prefix?.state, uniforms: SplitMixUniforms(seed: seed),
                                           cancellation: cancellation)
        return T3SpeechTokens(iterator: iterator, startSpeech: t3.config.startSpeechToken,
                              prefixUse: prefix.map { $0.reused ? .reused : .built } ?? .none)
    }
}

final class T3SpeechTokens: SpeechTokenStream {
    let iterator: T3TokenIterator
    let startSpeech: Int
    let prefixUse: PrefixUse
    private(set) var steps = 0

    init(iterator: T3TokenIterator, startSpeech: Int, prefixUse: PrefixUse) {
        self.iterator = iterator
        self.startSpeech = startSpeech
        self.prefixUse = prefixUse
    }

    func nextSpeechToken() -> Int? {
        while let token = iterator.next() {
            steps += 1
            if iterator.finished && token == iterator.decoder.model.config.stopSpeechToken { return nil }
            if token < startSpeech { return token }  // upstream drops ids ≥ start-of-speech
        }
        return nil
    }
}

/// `prepare_conditionals` for the model's family, from its VoiceEncoder and S3Gen files (the S3Gen
/// file holds the S3Tokenizer and CAMPPlus); nil when the directory lacks them.
func cloner(_ model: ConvertedModel) throws -> (@Sendable (URL, Float) throws -> Conditionals)? {
    guard model.manifest.files.contains(where: { $0.name == "ve.safetensors" }),
          let recipe = ConditionalsBuilder.Recipe.named(model.family.rawValue) else { return nil }
    let s3gen = try model.file(s3genFile(model))
    guard s3gen.contains("tokenizer._mel_filters") || s3gen.entries.contains(where: { $0.name.hasPrefix("tokenizer.") }) else { return nil }
    let builder = try ConditionalsBuilder(ve: try model.file("ve.safetensors"), s3gen: s3gen)
    return { url, exaggeration in try builder.build(referenceURL: url, recipe: recipe, exaggeration: exaggeration) }
}

/// The converted S3Gen file: `s3gen.safetensors` (Turbo's meanflow decoder converts under the same name
/// unless the converter kept upstream's `s3gen_meanflow.safetensors`).
func s3genFile(_ model: ConvertedModel) -> String {
    model.manifest.files.contains { $0.name == "s3gen_meanflow.safetensors" } ? "s3gen_meanflow.safetensors" : "s3gen.safetensors"
}

/// Everything a synthesis needs, loaded once.
package struct SpeechModels: Sendable {
    var family: ModelFamily
    var frontEnd: any TextTokenizer
    var speech: any SpeechTokenModel
    var s3gen: S3Gen
    var builtinVoice: Conditionals
    /// Builds conditionals from a reference recording (with an exaggeration); nil when the model
    /// lacks the voice-cloning networks.
    var cloneVoice: (@Sendable (URL, Float) throws -> Conditionals)?
    var watermarker: PerthWatermarker?
    /// S3Gen tokens appended after each piece (Turbo appends 3 silence tokens as upstream does).
    var trailingSilenceTokens: Int = 0
    /// Compute dtype of T3's matrices, for `info`.
    var precision: String
    /// Where the built-in voice's T3 conditioning prefix is kept on disk (models loaded from a
    /// converted directory; nil for models built in memory).
    var prefixPersistence: T3PrefixPersistence?

    /// The T3 that conditioning prefixes are computed with.
    var t3: T3? { (speech as? T3SpeechTokenModel)?.t3 }

    /// The built-in voice's T3 conditioning prefix, beside the weights (not in the manifest: it is
    /// derived, rewritten whenever it does not match them).
    static let builtinPrefixFileName = "builtin-voice-t3-prefix.safetensors"

    /// Loads a converted model directory (weights-format.md).
    static func load(directory: URL, watermarker: PerthWatermarker?) throws -> SpeechModels {
        let model = try ConvertedModel(directory: directory)
        let t3File = try model.file("t3.safetensors")
        let conds = try model.file("conds.safetensors")
        let precision = model.manifest.files.first { $0.name == "t3.safetensors" }?.dtype ?? "F32"
        let shapes = model.manifest.hyperparameters
        switch model.family {
        case .chatterbox, .chatterboxTurbo:
            let config = try shapes?.t3 ?? T3Config.inferred(from: t3File)
            let t3 = try T3(weights: t3File, config: config)
            let frontEnd: any TextTokenizer = config.isTurbo
                ? try TurboTokenizer(directory: directory)
                : try EnglishTokenizer(contentsOf: model.path(of: EnglishTokenizer.fileName))
            let builtinVoice = try Conditionals(store: conds, family: model.family.rawValue)
            let t3Entry = model.manifest.files.first { $0.name == "t3.safetensors" }
            let persistence = t3Entry.map {
                T3PrefixPersistence(path: directory.appendingPathComponent(builtinPrefixFileName).path,
                                    fingerprint: "t3.safetensors sha256 \($0.sha256) \($0.dtype ?? "F32")",
                                    speakerEmbedding: builtinVoice.t3.speakerEmb,
                                    promptTokens: builtinVoice.t3.condPromptSpeechTokens ?? [])
            }
            return SpeechModels(
                family: model.family, frontEnd: frontEnd, speech: T3SpeechTokenModel(t3: t3),
                s3gen: try S3Gen(weights: try model.file(s3genFile(model)), decoderHeads: shapes?.s3genDecoderHeads ?? 8,
                                 vocoder: shapes?.hift ?? .chatterbox),
                builtinVoice: builtinVoice,
                cloneVoice: try cloner(model), watermarker: watermarker,
                // `tts_turbo.generate` appends three S3GEN_SIL tokens to every utterance.
                trailingSilenceTokens: config.isTurbo ? 3 : 0, precision: precision, prefixPersistence: persistence)
        case .chatterboxMultilingual:
            throw StreamingTTSError.modelUnusable("the \(model.family.rawValue) family cannot be synthesised by this build yet (model at \(directory.path))")
        }
    }
}
