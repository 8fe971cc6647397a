import ChatterAudio
import ChatterModels
import Foundation

/// When the token generator hands a run of speech tokens to the vocoder.
public enum ChunkStrategy: String, Sendable, Codable, CaseIterable {
    /// Paced by playback (the default): the first chunk after `firstChunkTokens`, then each push
    /// waits for as many tokens as it can while the audio already sent still plays, and is rendered
    /// just in time for it (`PlaybackPacer`). A stream that cannot keep up with playback stops
    /// pacing and renders the rest in as few pushes as it can (each push re-decodes the voice prompt
    /// and left context, so small late pushes only make a slow stream slower). The chunk boundaries
    /// depend on the machine's speed, so the audio is the same for the same seed only to within the
    /// seam error (BENCHMARKS.md); `adaptive` and `one_shot` are exactly reproducible.
    case paced
    /// Fixed sizes: `firstChunkTokens`, then `chunkTokens`.
    case adaptive
    /// As adaptive, but a chunk also ends early on the speech silence token (4299) once it holds at
    /// least 3 tokens, so seams fall in pauses.
    case sentenceAligned = "sentence_aligned"
}

/// Everything a synthesis can be asked for besides its text and voice: the Python package's
/// `StreamConfig` fields (chunk sizes, overlap, strategy, sampling, max length) plus CFG weight,
/// exaggeration, min_p, a seed, speed and text splitting. One name per parameter, shared by the
/// library, the CLI (`--max-tokens`) and the server (`"max_tokens"`: snake case on the wire, the
/// `CodingKeys` below). A sampling field left nil takes the loaded family's upstream default
/// (`resolved(for:)`), so one value serves every family. Checked once, by `validate(for:)`, which the
/// engine runs before a synthesis is queued.
public struct SynthesisOptions: Sendable, Equatable, Codable {
    /// Speech tokens in the first chunk (25 tokens = 1 s of audio): smaller is a faster first chunk.
    /// 15 (0.6 s) keeps the stream within 50 dB of one S3Gen call on the full-size checkpoints, where
    /// 20 or 25 did not on every seed (BENCHMARKS.md, "The streaming tax, counted").
    public var firstChunkTokens = 15
    /// Speech tokens in each later chunk of the `adaptive` and `sentenceAligned` strategies (`paced`
    /// sizes its later chunks by playback).
    public var chunkTokens = 75
    /// Accepted for compatibility with the Python package, where each chunk is vocoded alone and
    /// overlap re-feeds tokens. Here every chunk is rendered with the tokens before it as context
    /// (`flowContextTokens`), which subsumes it; must be ≥ 0.
    public var overlapTokens = 0
    public var strategy = ChunkStrategy.paced

    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    /// Classifier-free guidance weight (original family; Turbo has no CFG).
    public var cfgWeight: Float?
    /// Emotion exaggeration (original family).
    public var exaggeration: Float?
    /// Most speech tokens generated per text piece (upstream `max_new_tokens` / `max_gen_len`; 25
    /// tokens per second), at most `maxTokensLimit`.
    public var maxTokens: Int?
    /// Seed of every random draw of a synthesis (sampling, CFM noise, vocoder excitation): the same
    /// text, voice, options and seed give the same speech tokens and, with `oneShot` or a fixed
    /// `strategy` (`adaptive`, `sentenceAligned`), the same audio; `paced` cuts the chunks by the
    /// machine's speed, so its audio repeats to within the seam error. nil: a fresh seed per call.
    public var seed: UInt64?
    /// Playback speed, 0.25–4 (OpenAI's range), changed without changing pitch (libsonic) after the
    /// vocoder; 1 leaves the audio untouched.
    public var speed: Float = 1
    /// The language of the text, an ISO 639-1 code (`fr`; upstream `language_id`, compared after
    /// lowercasing): one of the multilingual models' 23 (`SpokenLanguage.multilingual`). nil: the
    /// text goes in without a language tag, as upstream `generate(language_id=None)` does (no
    /// language-specific preprocessing either). The English-only models take nil or `en` (what their
    /// tokenizers accept); any other language is an error, so a request meant for a multilingual model
    /// fails loudly elsewhere.
    public var language: String?

    /// Long text is split at sentence boundaries into pieces of at most this many characters, spoken
    /// as one continuous stream.
    public var maxCharactersPerPiece = 300
    /// Speech tokens before the new ones that the flow re-decodes for each chunk (bounds the cost of
    /// long utterances; 100 tokens = 4 s).
    public var flowContextTokens = 100
    /// Voice prompt tokens (the last that many) that the first chunk's flow decodes; 0: the whole
    /// prompt. The prompt (250 tokens, 10 s, for the built-in voices) is most of the first push's
    /// work and the first push is what a listener waits for; later pushes decode the whole prompt, as
    /// one call over the utterance does, so the bound costs only the first 0.6 s its fidelity to that
    /// call (figures per checkpoint in BENCHMARKS.md, "The streaming tax, counted").
    public var flowPromptTokens = 80
    /// Steps of S3Gen's flow-matching solver; nil takes the model's upstream default (2 for Turbo's
    /// meanflow decoder, 10 for the original family's). Fewer steps are faster (meanflow's one step
    /// costs half of two; its error against two is stated in BENCHMARKS.md).
    public var flowSteps: Int?
    /// Render for a file rather than a listener: the whole utterance in the fewest S3Gen calls
    /// (one up to `wholeUtteranceTokens`), its audio in one chunk at the end, so none of the work
    /// streaming repeats per chunk (the prompt, left context) is paid. `chatterstream say` sets it.
    public var oneShot = false

    /// The solver steps `flowSteps` accepts.
    public static let flowStepsRange = 1...32
    /// Speech tokens one S3Gen call renders at most in a one-shot run (60 s; longer utterances take
    /// one more call per 60 s, each with `flowContextTokens` of context, bounding the flow's
    /// attention memory).
    public static let wholeUtteranceTokens = 1500

    /// The largest `maxTokens`: the original family's speech position table (4096 tokens, 164 s).
    public static let maxTokensLimit = 4096

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case firstChunkTokens = "first_chunk_tokens", chunkTokens = "chunk_tokens", overlapTokens = "overlap_tokens"
        case strategy, temperature, seed, speed, exaggeration, language
        case topK = "top_k", topP = "top_p", minP = "min_p", repetitionPenalty = "repetition_penalty"
        case cfgWeight = "cfg_weight", maxTokens = "max_tokens"
        case maxCharactersPerPiece = "max_characters_per_piece", flowContextTokens = "flow_context_tokens"
        case flowSteps = "flow_steps", oneShot = "one_shot", flowPromptTokens = "flow_prompt_tokens"
    }

    public init(from decoder: any Decoder) throws {
        self = try SynthesisOptions(from: decoder, over: SynthesisOptions())
    }

    /// Decodes the fields present in `decoder` over `base` (a server's defaults under a request's
    /// fields). A field of the wrong type or out of its type's range is a `DecodingError` whose coding
    /// path names it.
    public init(from decoder: any Decoder, over base: SynthesisOptions) throws {
        self = base
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys, _ type: T.Type) throws -> T? {
            do {
                return try c.decodeIfPresent(type, forKey: key)
            } catch let error as DecodingError {
                switch error {
                case let .dataCorrupted(context) where context.codingPath.isEmpty:
                    throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: context.debugDescription))
                default: throw error
                }
            } catch {
                // Foundation reports a number its type cannot hold (-1 for UInt64, 1e39 for Float) as
                // an internal error that would surface as "not valid JSON": name the field instead.
                throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "\(error)", underlyingError: error))
            }
        }
        if let v = try field(.firstChunkTokens, Int.self) { firstChunkTokens = v }
        if let v = try field(.chunkTokens, Int.self) { chunkTokens = v }
        if let v = try field(.overlapTokens, Int.self) { overlapTokens = v }
        if let v = try field(.strategy, ChunkStrategy.self) { strategy = v }
        if let v = try field(.temperature, Float.self) { temperature = v }
        if let v = try field(.topK, Int.self) { topK = v }
        if let v = try field(.topP, Float.self) { topP = v }
        if let v = try field(.minP, Float.self) { minP = v }
        if let v = try field(.repetitionPenalty, Float.self) { repetitionPenalty = v }
        if let v = try field(.cfgWeight, Float.self) { cfgWeight = v }
        if let v = try field(.exaggeration, Float.self) { exaggeration = v }
        if let v = try field(.maxTokens, Int.self) { maxTokens = v }
        if let v = try field(.seed, UInt64.self) { seed = v }
        if let v = try field(.speed, Float.self) { speed = v }
        if let v = try field(.language, String.self) { language = v }
        if let v = try field(.maxCharactersPerPiece, Int.self) { maxCharactersPerPiece = v }
        if let v = try field(.flowContextTokens, Int.self) { flowContextTokens = v }
        if let v = try field(.flowSteps, Int.self) { flowSteps = v }
        if let v = try field(.flowPromptTokens, Int.self) { flowPromptTokens = v }
        if let v = try field(.oneShot, Bool.self) { oneShot = v }
    }

    /// The values a synthesis runs with: nil fields filled from `family`'s upstream defaults.
    public func resolved(for family: ModelFamily) -> ResolvedSynthesisOptions {
        let defaults = family.samplingDefaults
        return ResolvedSynthesisOptions(
            chunking: self,
            sampling: T3SamplingParameters(
                temperature: temperature ?? defaults.temperature, cfgWeight: cfgWeight ?? defaults.cfgWeight,
                exaggeration: exaggeration ?? defaults.exaggeration,
                repetitionPenalty: repetitionPenalty ?? defaults.repetitionPenalty, minP: minP ?? defaults.minP,
                topP: topP ?? defaults.topP, topK: topK ?? defaults.topK, maxNewTokens: maxTokens ?? defaults.maxNewTokens))
    }

    /// Checks every field for `family`, once, before any work: a `StreamingTTSError.invalidOption`
    /// naming the field as the wire does (`max_tokens`), or the sampling ranges' `T3Error.invalidParameter`.
    @discardableResult
    public func validate(for family: ModelFamily) throws -> ResolvedSynthesisOptions {
        func check(_ ok: Bool, _ field: CodingKeys, _ why: String) throws {
            if !ok { throw StreamingTTSError.invalidOption(field: field.rawValue, reason: why) }
        }
        try check(firstChunkTokens >= 1, .firstChunkTokens, "must be at least 1 (got \(firstChunkTokens))")
        try check(chunkTokens >= 1, .chunkTokens, "must be at least 1 (got \(chunkTokens))")
        try check(overlapTokens >= 0, .overlapTokens, "must not be negative (got \(overlapTokens))")
        try check(maxCharactersPerPiece >= 20, .maxCharactersPerPiece, "must be at least 20 (got \(maxCharactersPerPiece))")
        try check(flowContextTokens >= 10, .flowContextTokens, "must be at least 10 (got \(flowContextTokens))")
        try check(flowPromptTokens == 0 || flowPromptTokens >= 10, .flowPromptTokens,
                  "must be 0 (the whole prompt) or at least 10 (got \(flowPromptTokens))")
        try check(flowSteps.map { Self.flowStepsRange.contains($0) } ?? true, .flowSteps,
                  "must be in \(Self.flowStepsRange.lowerBound)...\(Self.flowStepsRange.upperBound) (got \(flowSteps ?? 0); upstream runs 2 meanflow / 10 standard steps)")
        try check(maxTokens.map { (1...Self.maxTokensLimit).contains($0) } ?? true, .maxTokens,
                  "must be in 1...\(Self.maxTokensLimit) (got \(maxTokens ?? 0); 25 tokens are 1 s of speech)")
        try check(speed.isFinite && SpeechRateChanger.speeds.contains(speed), .speed,
                  "must be in \(SpeechRateChanger.speeds.lowerBound)...\(SpeechRateChanger.speeds.upperBound) (got \(speed))")
        if let language, !language.isEmpty {
            let spoken = family.variant.languages
            do { _ = try SpokenLanguage.resolve(language, among: spoken) } catch {
                let multilingual = ModelFamily.allCases.filter { $0.variant.languages.count > 1 }.map(\.rawValue)
                throw StreamingTTSError.invalidOption(field: CodingKeys.language.rawValue, reason: spoken.count > 1 ? error.description
                    : "\(family.rawValue) speaks English only (got '\(language)'): omit the language or give 'en', or use \(multilingual.joined(separator: " or "))")
            }
        }
        let resolved = resolved(for: family)
        try resolved.sampling.validate()
        return resolved
    }
}

/// `SynthesisOptions` with every sampling value decided.
public struct ResolvedSynthesisOptions: Sendable, Equatable {
    public var chunking: SynthesisOptions
    public var sampling: T3SamplingParameters
}

extension ModelFamily {
    /// Upstream's `generate` defaults for the family (tts.py / tts_turbo.py / mtl_tts.py).
    public var samplingDefaults: T3SamplingParameters { variant.samplingDefaults }
}
