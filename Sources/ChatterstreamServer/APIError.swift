import ChatterAudio
import ChatterModels
import Chatterstream
import Foundation
import Hummingbird

/// An error answered as OpenAI's API answers them, `{"error": {"message", "type", "param", "code"}}`,
/// with its HTTP status (and `Retry-After` for 429 and 503).
public struct APIError: Error, Equatable, CustomStringConvertible, HTTPResponseError {
    public let status: HTTPResponse.Status
    public let message: String
    /// The request field at fault, as the wire names it (`max_tokens`), when there is one.
    public var param: String?
    /// Seconds after which a retry may succeed (sent as Retry-After), for 429s and 503s.
    public var retryAfterSeconds: Int?
    /// Sent with `Connection: close`: the answer came before the request body was read, so the
    /// connection cannot carry another request (RFC 9112 §9.6 asks the server to say so).
    public var closesConnection: Bool

    public init(_ status: HTTPResponse.Status, _ message: String, param: String? = nil, retryAfterSeconds: Int? = nil,
                closesConnection: Bool = false) {
        self.status = status
        self.message = message
        self.param = param
        self.retryAfterSeconds = retryAfterSeconds
        self.closesConnection = closesConnection
    }

    public var description: String { "\(status.code) \(message)" }

    /// OpenAI's `type`: the caller's fault or the server's.
    public var type: String {
        switch status.code {
        case 401: "authentication_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        default: "server_error"
        }
    }

    /// A stable machine-readable reason.
    public var code: String {
        switch status.code {
        case 400: param == nil ? "invalid_request" : "invalid_value"
        case 401: "invalid_api_key"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 409: "conflict"
        case 413: "request_too_large"
        case 415: "unsupported_media_type"
        case 429: "rate_limit_exceeded"
        case 503: "unavailable"
        default: "internal_error"
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }

    struct Body: Codable {
        struct Detail: Codable {
            let message: String; let type: String; let param: String?; let code: String
            /// `param` is always present, null when no field is at fault, as OpenAI sends it.
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(message, forKey: .message)
                try c.encode(type, forKey: .type)
                try c.encode(param, forKey: .param)
                try c.encode(code, forKey: .code)
            }
        }
        let error: Detail
    }

    var response: Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = Body(error: .init(message: message, type: type, param: param, code: code))
        let json = (try? encoder.encode(body)) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        if closesConnection { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// The status a synthesis error deserves: the caller's input (400), a missing voice (404), a full
    /// queue (429), an engine that cannot run or ran out of wall time (503), anything else (500). The message is the error's
    /// own, which already says what to change.
    public init(classifying error: any Error) {
        switch error {
        case let error as APIError:
            self = error
        case let error as StreamingTTSError:
            switch error {
            case let .invalidOption(field, _): self.init(.badRequest, error.description, param: field)
            case .emptyText, .textTooLong: self.init(.badRequest, error.description, param: "input")
            case .voiceUnusable: self.init(.badRequest, error.description, param: "voice")
            case .voiceNotFound: self.init(.notFound, error.description, param: "voice")
            case .queueFull: self.init(.tooManyRequests, error.description, retryAfterSeconds: 5)
            case .modelUnusable, .deviceUnavailable: self.init(.serviceUnavailable, error.description)
            case .cancelled: self.init(.internalServerError, error.description)
            }
        case let error as T3Error:
            switch error {
            case let .invalidParameter(name, _, _):
                self.init(.badRequest, error.description, param: name == "max_new_tokens" ? "max_tokens" : name)
            case .sequenceTooLong: self.init(.badRequest, error.description, param: "max_tokens")
            case .textTooLong, .emptyText: self.init(.badRequest, error.description, param: "input")
            default: self.init(.internalServerError, error.description)
            }
        case let error as SynthesisLimitExceeded:
            // The request asked for more work than one request may (README "Limits"): the caller's to change.
            switch error.limit {
            case "maxTextCharacters", "maxPieces": self.init(.badRequest, error.description, param: "input")
            case "maxReferenceBytes": self.init(.badRequest, error.description, param: "voice")
            // Its wall time ran out, queue wait included: mostly a busy engine, so retry later.
            case "maxWallSeconds": self.init(.serviceUnavailable, error.description, retryAfterSeconds: 5)
            default: self.init(.badRequest, error.description)
            }
        case let error as ModelStoreError:
            if case .perthUnavailable = error {
                self.init(.serviceUnavailable, error.description)
            } else {
                self.init(.internalServerError, error.description)
            }
        case let error as ConditionalsError:
            // Every case is about the reference the caller chose.
            self.init(.badRequest, "unusable voice: \(error.description)", param: "voice")
        case let error as AudioFrontEndError:
            self.init(.badRequest, "unusable voice: \(error.description)", param: "voice")
        default:
            self.init(.internalServerError, String(describing: error))
        }
    }
}
