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
    /// How each run's KV cache stores keys and values (`StreamingTTS.kvCachePrecision`).
    var kvCachePrecision: KVCache.Precision = .f32
    var maxTextTokens: Int { t3.config.maxTextTokens }

    func tokens(conditioning: Conditionals, textTokens: [Int], parameters: T3SamplingParameters,
                seed: UInt64, cancellation: T3Cancellation, prefixes: T3PrefixCache?) throws -> any SpeechTokenStream {
        let speaker = conditioning.t3.speakerEmb, prompt = conditioning.t3.condPromptSpeechTokens ?? []
        let inputs = T3ConditioningInputs(config: t3.config, speakerEmbedding: speaker, promptTokens: prompt,
                                          exaggeration: parameters.exaggeration)
        let prefix = try prefixes?.prefix(model: t3, inputs: inputs)
        let iterator = try T3TokenIterator(model: t3, speakerEmbedding: speaker, promptTokens: prompt, textTokens: textTokens,
                                           parameters: parameters, prefix: prefix?.state, uniforms: SplitMixUniforms(seed: seed),
                                           cancellation: cancellation, kvCachePrecision: kvCachePrecision)
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

/// Everything a synthesis needs, loaded once.
package struct SpeechModels: Sendable {
    /// The family and its sizes.
    var variant: ModelVariant
    var frontEnd: any TextTokenizer
    var speech: any SpeechTokenModel
    var s3gen: S3Gen
    var builtinVoice: Conditionals
    /// Builds conditionals from a reference recording (with an exaggeration); nil when the model
    /// lacks the voice-cloning networks.
    var cloneVoice: (@Sendable (URL, Float) throws -> Conditionals)?
    var watermarker: PerthWatermarker?
    /// Compute dtype of T3's matrices, for `info`.
    var precision: String
    /// Where the built-in voice's T3 conditioning prefix is kept on disk (models loaded from a
    /// converted directory; nil for models built in memory).
    var prefixPersistence: T3PrefixPersistence?

    /// The store's name for the family.
    var family: ModelFamily { ModelFamily(variant) }
    /// S3Gen tokens appended after each piece (Turbo appends 3 silence tokens as upstream does).
    var trailingSilenceTokens: Int { variant.trailingSilenceTokens }
    var finalTokenTrimmed: Bool { variant.finalTokenTrimmed }

    /// The T3 that conditioning prefixes are computed with.
    var t3: T3? { (speech as? T3SpeechTokenModel)?.t3 }

    /// How each run's KV cache stores keys and values.
    var kvCachePrecision: KVCache.Precision { (speech as? T3SpeechTokenModel)?.kvCachePrecision ?? .f32 }

    /// The KV cache a T3 with weights stored as `t3Weights` (the manifest's dtype) gets when none is
    /// asked for: f32 beside f32 weights, the reference path, unchanged; f16 beside reduced-precision
    /// weights (BF16, F16, Q8_0), where the cache's own logits error (3.2e-5 on Turbo over 200 steps,
    /// 200 of 200 tokens identical; BENCHMARKS.md "KV cache in 16 bits") is 100-400x below the
    /// weights' (bf16 4.1e-3, q8_0 1.2e-2) and a decode step reads half the cache bytes (Turbo q8_0 at
    /// 450 positions: 12.2 against 13.7 ms/token). f16 rather than bf16: 8-9x less error for the same
    /// bytes; its range (65504) is far above GPT-2's and Llama's keys and values.
    static func automaticKVCachePrecision(t3Weights: String) -> KVCache.Precision {
        t3Weights.uppercased() == "F32" ? .f32 : .f16
    }

    /// Loads a converted model directory (weights-format.md).
    /// `kvCachePrecision` nil: `automaticKVCachePrecision` for the T3 file's dtype.
    static func load(directory: URL, watermarker: PerthWatermarker?, kvCachePrecision: KVCache.Precision? = nil,
                     s3genPrecision: S3GenPrecision = .f32) throws -> SpeechModels {
        let model = try ConvertedModel(directory: directory)
        let t3File = try model.file(ConvertedFiles.t3)
        let conds = try model.file(ConvertedFiles.builtinVoice)
        let precision = model.manifest.files.first { $0.name == ConvertedFiles.t3 }?.dtype ?? "F32"
        let family = model.family.variant
        guard family.synthesizes else {
            throw StreamingTTSError.modelUnusable("the \(family.name) family cannot be synthesised by this build yet (model at \(directory.path))")
        }
        let shapes = model.manifest.hyperparameters
        let variant = try family.resized(t3: shapes?.t3, s3genDecoderHeads: shapes?.s3genDecoderHeads, vocoder: shapes?.hift,
                                         t3Weights: t3File)
        guard type(of: variant.t3.procedure) == type(of: family.t3.procedure) else {
            throw StreamingTTSError.modelUnusable("\(ConvertedFiles.t3) in \(directory.path) holds a \(variant.t3.backbone) T3, not the \(family.name) family's \(family.t3.backbone)")
        }
        let t3 = try T3(weights: t3File, config: variant.t3)
        let builtinVoice = try Conditionals(store: conds, family: family)
        return SpeechModels(
            variant: variant, frontEnd: try variant.textTokenizer.load(directory: directory, cacheRoot: HubSettings().cacheRoot), speech: T3SpeechTokenModel(t3: t3, kvCachePrecision: kvCachePrecision ?? automaticKVCachePrecision(t3Weights: precision)),
            s3gen: try S3Gen(weights: try model.file(ConvertedFiles.s3gen), decoderHeads: variant.s3genDecoderHeads,
                             vocoder: variant.vocoder, precision: s3genPrecision),
            builtinVoice: builtinVoice, cloneVoice: try Voices.cloner(model, family: family), watermarker: watermarker,
            precision: precision, prefixPersistence: .builtinVoice(of: model, voice: builtinVoice))
    }
}

extension SpeechModels {
    /// A model built in memory around a T3 (the test engines of ChatterstreamTestSupport, which is
    /// built in release too, where `@testable` cannot reach the memberwise initializer). An extension,
    /// so that the struct keeps its memberwise initializer.
    package init(variant: ModelVariant, frontEnd: any TextTokenizer, t3: T3, s3gen: S3Gen, builtinVoice: Conditionals,
                 watermarker: PerthWatermarker? = nil, precision: String = "F32") {
        self.init(variant: variant, frontEnd: frontEnd, speech: T3SpeechTokenModel(t3: t3), s3gen: s3gen, builtinVoice: builtinVoice,
                  cloneVoice: nil, watermarker: watermarker, precision: precision)
    }
}
