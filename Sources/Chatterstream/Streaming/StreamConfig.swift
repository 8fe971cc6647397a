import ChatterModels

/// When the token generator hands a run of speech tokens to the vocoder.
public enum ChunkStrategy: String, Sendable, Codable, CaseIterable {
    /// Fixed sizes: `firstChunkTokens`, then `subsequentChunkTokens`.
    case adaptive
    /// As adaptive, but a chunk also ends early on the speech silence token (4299) once it holds at
    /// least 3 tokens, so seams fall in pauses.
    case sentenceAligned = "sentence_aligned"
}

/// Streaming and sampling settings (the Python package's `StreamConfig`, plus CFG weight,
/// exaggeration, min_p, a seed and text splitting). A sampling field left nil takes the loaded
/// family's upstream default (`resolved(for:)`), so one config serves both families.
public struct StreamConfig: Sendable, Equatable, Codable {
    /// Speech tokens in the first chunk (25 tokens = 1 s of audio): smaller is a faster first chunk.
    public var firstChunkTokens = 25
    /// Speech tokens in each later chunk.
    public var subsequentChunkTokens = 75
    /// Accepted for compatibility with the Python package, where each chunk is vocoded alone and
    /// overlap re-feeds tokens. Here every chunk is rendered with the tokens before it as context
    /// (`flowContextTokens`), which subsumes it; must be ≥ 0.
    public var overlapTokens = 0
    public var strategy = ChunkStrategy.adaptive

    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    /// Classifier-free guidance weight (original family; Turbo has no CFG).
    public var cfgWeight: Float?
    /// Emotion exaggeration (original family).
    public var exaggeration: Float?
    /// Most speech tokens generated per text piece (`max_gen_len`; 25 tokens per second).
    public var maxLength: Int?
    /// Seed of every random draw of a synthesis (sampling, CFM noise, vocoder excitation): the same
    /// text, voice, config and seed give the same audio. nil: a fresh seed per call.
    public var seed: UInt64?

    /// Long text is split at sentence boundaries into pieces of at most this many characters, spoken
    /// as one continuous stream.
    public var maxCharactersPerPiece = 300
    /// Speech tokens before the new ones that the flow re-decodes for each chunk (bounds the cost of
    /// long utterances; 100 tokens = 4 s).
    public var flowContextTokens = 100

    public init() {}

    /// The values a synthesis runs with: nil fields filled from `family`'s upstream defaults.
    public func resolved(for family: ModelFamily) -> ResolvedStreamConfig {
        let defaults = family.samplingDefaults
        return ResolvedStreamConfig(
            chunking: self,
            sampling: T3SamplingParameters(
                temperature: temperature ?? defaults.temperature, cfgWeight: cfgWeight ?? defaults.cfgWeight,
                exaggeration: exaggeration ?? defaults.exaggeration,
                repetitionPenalty: repetitionPenalty ?? defaults.repetitionPenalty, minP: minP ?? defaults.minP,
                topP: topP ?? defaults.topP, topK: topK ?? defaults.topK, maxNewTokens: maxLength ?? defaults.maxNewTokens))
    }

    /// Checks the chunking fields (sampling fields are checked by `T3SamplingParameters.validate`).
    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw StreamingTTSError.invalidConfig(field: field, reason: why) }
        }
        try check(firstChunkTokens >= 1, "firstChunkTokens", "must be at least 1 (got \(firstChunkTokens))")
        try check(subsequentChunkTokens >= 1, "subsequentChunkTokens", "must be at least 1 (got \(subsequentChunkTokens))")
        try check(overlapTokens >= 0, "overlapTokens", "must not be negative (got \(overlapTokens))")
        try check(maxCharactersPerPiece >= 20, "maxCharactersPerPiece", "must be at least 20 (got \(maxCharactersPerPiece))")
        try check(flowContextTokens >= 10, "flowContextTokens", "must be at least 10 (got \(flowContextTokens))")
        try check(maxLength.map { $0 >= 1 } ?? true, "maxLength", "must be at least 1")
    }
}

/// A `StreamConfig` with every sampling value decided.
public struct ResolvedStreamConfig: Sendable, Equatable {
    public var chunking: StreamConfig
    public var sampling: T3SamplingParameters
}

extension ModelFamily {
    /// Upstream's `generate` defaults for the family (tts.py / tts_turbo.py / mtl_tts.py).
    public var samplingDefaults: T3SamplingParameters { variant.samplingDefaults }
}
