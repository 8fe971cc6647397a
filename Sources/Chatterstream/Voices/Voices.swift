import ChatterModels
import Foundation

/// The engine's voices in one place, from recording to T3 prefix: a `Voice` becomes `Conditionals`
/// (the model's built-in voice; a saved conditionals file; a recording analysed by the family's
/// `ConditionalsBuilder`, cached by path and modification time), and conditionals become a cached T3
/// conditioning prefix (`T3PrefixCache`; the built-in voice's is also kept on disk beside the model,
/// `T3PrefixPersistence`). The networks that analyse a recording live in ChatterModels
/// (`Conditionals/`); the caches and the persisted prefix live here.
final class Voices: Sendable {
    /// Conditionals of voice files, least recently used evicted.
    let files = ConditioningCache()
    /// T3 conditioning prefixes of the last few voices (at most 4, ≈ 74 MB each for full-size Turbo in
    /// f32; see `T3PrefixCache`), so that a repeated voice skips most of each T3 prefill.
    let prefixes = T3PrefixCache(capacity: 4)

    /// Attaches the built-in voice's prefix file of `models` (if it has one) and loads it when it
    /// matches the weights; nil when there is no file to attach.
    func attachBuiltinPrefix(of models: SpeechModels) -> (path: String, outcome: T3PrefixCache.PersistedPrefix)? {
        guard let persistence = models.prefixPersistence, let t3 = models.t3 else { return nil }
        return (persistence.path, prefixes.attach(persistence, model: t3))
    }

    /// The voice's conditionals. Exaggeration only shapes T3's conditioning, which is rebuilt per run
    /// from the sampling parameters (as upstream `generate` does when it differs), so one cached
    /// analysis of a file serves every exaggeration.
    func conditionals(for voice: Voice, models: SpeechModels, exaggeration: Float) throws -> Conditionals {
        switch voice {
        case .builtin: return models.builtinVoice
        case let .file(url):
            return try files.conditioning(for: url) { try Self.conditionals(fromFile: $0, models: models, exaggeration: exaggeration) }
        }
    }

    /// Conditionals from a voice file: a saved conditionals file (`.safetensors`) or a recording.
    static func conditionals(fromFile url: URL, models: SpeechModels, exaggeration: Float) throws -> Conditionals {
        if url.pathExtension.lowercased() == "safetensors" {
            do { return try Conditionals(contentsOf: url) } catch {
                throw StreamingTTSError.voiceUnusable(path: url.path, reason: "\(error)")
            }
        }
        guard let clone = models.cloneVoice else {
            throw StreamingTTSError.voiceUnusable(path: url.path, reason: "this model has no voice-cloning networks (ve.safetensors, S3Gen's tokenizer and speaker encoder)")
        }
        return try clone(url, exaggeration)
    }

    /// `prepare_conditionals` of `family` over a converted model's VoiceEncoder and S3Gen files (the
    /// S3Gen file holds the S3Tokenizer and CAMPPlus); nil when the directory lacks them.
    static func cloner(_ model: ConvertedModel, family: ModelVariant) throws -> (@Sendable (URL, Float) throws -> Conditionals)? {
        guard model.manifest.files.contains(where: { $0.name == ConvertedFiles.voiceEncoder }) else { return nil }
        let s3gen = try model.file(ConvertedFiles.s3gen)
        guard s3gen.contains("tokenizer._mel_filters") || s3gen.entries.contains(where: { $0.name.hasPrefix("tokenizer.") }) else { return nil }
        let builder = try ConditionalsBuilder(ve: try model.file(ConvertedFiles.voiceEncoder), s3gen: s3gen)
        return { url, exaggeration in try builder.build(referenceURL: url, for: family, exaggeration: exaggeration) }
    }
}
