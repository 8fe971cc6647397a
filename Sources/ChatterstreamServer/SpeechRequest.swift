import ChatterAudio
import Chatterstream
import Foundation

/// The JSON body of `POST /v1/audio/speech` (OpenAI's create-speech request) and of `POST /v1/hls`:
/// `model`, `input`, `voice`, `response_format`, `speed`, `stream_format`, `instructions` (accepted,
/// ignored), and beside them every `SynthesisOptions` field by its wire name (`seed`, `temperature`,
/// `max_tokens`, …; `speed` and `language` are among them: `language` is for the multilingual models).
/// The older `/v1/speech` also takes `text` for `input` and `format` for `response_format`.
public struct SpeechRequest: Sendable, Equatable {
    /// Longest `input` OpenAI accepts, and so do we.
    public static let maxInputCharacters = 4096

    public var model: String?
    public var input: String
    public var voice: String?
    public var responseFormat: AudioFormat?
    public var streamFormat: StreamFormat
    public var instructions: String?
    /// The request's synthesis fields laid over the server's defaults.
    public var options: SynthesisOptions
    /// The language of `input` (`SynthesisOptions.language`).
    public var language: String? { options.language }

    public enum StreamFormat: String, Sendable, Codable {
        /// The audio bytes, streamed with chunked transfer as they are made.
        case audio
        /// Server-sent events: `speech.audio.delta` (base64 audio), then `speech.audio.done`.
        case sse
    }

    enum Keys: String, CodingKey {
        case model, input, voice, instructions, text, format
        case responseFormat = "response_format", streamFormat = "stream_format"
    }

    /// Decodes `body` over `defaults`: a 400 that names the field for a wrong type or value, "not
    /// JSON" only when the body is not JSON at all.
    public static func decode(_ body: Data, defaults: SynthesisOptions) throws(APIError) -> SpeechRequest {
        let decoder = JSONDecoder()
        decoder.userInfo[.synthesisDefaults] = defaults
        do {
            return try decoder.decode(Wire.self, from: body).request
        } catch let error as APIError {
            throw error
        } catch let error as DecodingError {
            let (message, param) = Self.explain(error)
            throw APIError(.badRequest, "invalid request body: \(message)", param: param)
        } catch {
            throw APIError(.badRequest, "invalid request body: \(error)")
        }
    }

    private struct Wire: Decodable {
        let request: SpeechRequest
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            func field<T: Decodable>(_ key: Keys, _ type: T.Type) throws -> T? {
                do { return try c.decodeIfPresent(type, forKey: key) } catch let error as DecodingError {
                    if case let .dataCorrupted(context) = error, context.codingPath.isEmpty {
                        throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: context.debugDescription))
                    }
                    throw error
                } catch let error as APIError {
                    throw error
                } catch {
                    throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "\(error)", underlyingError: error))
                }
            }
            guard let input = try field(.input, String.self) ?? field(.text, String.self) else {
                throw APIError(.badRequest, "missing field 'input': the text to speak", param: "input")
            }
            guard input.count <= SpeechRequest.maxInputCharacters else {
                throw APIError(.badRequest, "input is \(input.count) characters; the limit is \(SpeechRequest.maxInputCharacters): split the text over several requests", param: "input")
            }
            var format: AudioFormat?
            if let name = try field(.responseFormat, String.self) ?? field(.format, String.self) {
                guard let parsed = AudioFormat(rawValue: name.lowercased()) else {
                    throw APIError(.badRequest, "unknown response_format '\(name)': use one of \(AudioFormat.allCases.map(\.rawValue).joined(separator: ", "))", param: "response_format")
                }
                format = parsed
            }
            var stream = StreamFormat.audio
            if let name = try field(.streamFormat, String.self) {
                guard let parsed = StreamFormat(rawValue: name) else {
                    throw APIError(.badRequest, "unknown stream_format '\(name)': use audio or sse", param: "stream_format")
                }
                stream = parsed
            }
            let defaults = decoder.userInfo[.synthesisDefaults] as? SynthesisOptions ?? SynthesisOptions()
            request = SpeechRequest(
                model: try field(.model, String.self), input: input, voice: try field(.voice, String.self),
                responseFormat: format, streamFormat: stream, instructions: try field(.instructions, String.self),
                options: try SynthesisOptions(from: decoder, over: defaults))
        }
    }

    private static func explain(_ error: DecodingError) -> (String, String?) {
        func field(_ path: [any CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, _): return ("missing field '\(key.stringValue)'", key.stringValue)
        case let .typeMismatch(type, context):
            return ("field '\(field(context.codingPath))' must be \(Self.name(of: type))", field(context.codingPath))
        case let .valueNotFound(type, context):
            return ("field '\(field(context.codingPath))' must be \(Self.name(of: type)), not null", field(context.codingPath))
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty { return ("not JSON (\(context.debugDescription))", nil) }
            return ("field '\(field(context.codingPath))' is out of range or malformed (\(context.debugDescription))", field(context.codingPath))
        @unknown default: return ("\(error)", nil)
        }
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Float.Type, is Double.Type: "a number"
        case is UInt64.Type: "a non-negative integer"
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }
}

extension CodingUserInfoKey {
    /// The server's `SynthesisOptions`, under which a request's fields are decoded.
    static let synthesisDefaults = CodingUserInfoKey(rawValue: "chatterstream.synthesisDefaults")!
}
