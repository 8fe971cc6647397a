import Chatterstream
import Foundation

/// The JSON body of `POST /v1/speech` and `POST /v1/hls`. Field names follow the CLI options in
/// snake case; every field but `text` is optional and falls back to the server's defaults.
public struct SpeechRequest: Sendable, Codable, Equatable {
    public var text: String
    /// `"builtin"` or an absolute path, on the server, to a reference recording or saved conditionals.
    public var voice: String?
    /// `pcm`, `opus`, `mp3` or `wav` (default `wav`); ignored by `/v1/hls`, whose segments are MP3 in MPEG-TS.
    public var format: String?
    public var seed: UInt64?
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    public var cfgWeight: Float?
    public var exaggeration: Float?
    public var maxTokens: Int?
    public var firstChunkTokens: Int?
    public var chunkTokens: Int?
    /// `adaptive` or `sentence_aligned`.
    public var strategy: ChunkStrategy?

    enum CodingKeys: String, CodingKey {
        case text, voice, format, seed, temperature, exaggeration, strategy
        case topK = "top_k", topP = "top_p", minP = "min_p", repetitionPenalty = "repetition_penalty"
        case cfgWeight = "cfg_weight", maxTokens = "max_tokens", firstChunkTokens = "first_chunk_tokens"
        case chunkTokens = "chunk_tokens"
    }

    public init(text: String) { self.text = text }

    /// Decodes a body, turning decoding failures into a 400 that names the field.
    static func decode(_ body: Data) throws(APIError) -> SpeechRequest {
        do {
            return try JSONDecoder().decode(SpeechRequest.self, from: body)
        } catch let error as DecodingError {
            throw APIError(.badRequest, "invalid request body: \(Self.explain(error))")
        } catch {
            throw APIError(.badRequest, "invalid request body: \(error)")
        }
    }

    private static func explain(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, _): return "missing field '\(key.stringValue)'"
        case let .typeMismatch(type, context): return "field '\(field(context.codingPath))' must be \(type)"
        case let .valueNotFound(type, context): return "field '\(field(context.codingPath))' must be \(type), not null"
        case let .dataCorrupted(context):
            return context.codingPath.isEmpty ? "not JSON (\(context.debugDescription))"
                : "field '\(field(context.codingPath))': \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// The engine's settings with this request's fields laid over them.
    func config(over base: StreamConfig) -> StreamConfig {
        var config = base
        if let seed { config.seed = seed }
        if let temperature { config.temperature = temperature }
        if let topK { config.topK = topK }
        if let topP { config.topP = topP }
        if let minP { config.minP = minP }
        if let repetitionPenalty { config.repetitionPenalty = repetitionPenalty }
        if let cfgWeight { config.cfgWeight = cfgWeight }
        if let exaggeration { config.exaggeration = exaggeration }
        if let maxTokens { config.maxLength = maxTokens }
        if let firstChunkTokens { config.firstChunkTokens = firstChunkTokens }
        if let chunkTokens { config.subsequentChunkTokens = chunkTokens }
        if let strategy { config.strategy = strategy }
        return config
    }

    /// Checks what can be checked before any synthesis: there is something to say, and the voice is
    /// the built-in one or a file that exists (400 for a voice that is neither, 404 for a missing file).
    func validatedVoice(default fallback: Voice) throws(APIError) -> Voice {
        if text.allSatisfy(\.isWhitespace) {
            throw APIError(.badRequest, StreamingTTSError.emptyText.description)
        }
        guard let name = voice else { return fallback }
        if name == "builtin" { return .builtin }
        guard name.hasPrefix("/") else {
            throw APIError(.badRequest, "unknown voice '\(name)': use \"builtin\" or an absolute path to a recording or conditionals file on the server")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: name, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw APIError(.notFound, StreamingTTSError.voiceNotFound(path: name).description)
        }
        return .file(URL(fileURLWithPath: name))
    }
}
