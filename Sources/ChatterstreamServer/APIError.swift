import ChatterAudio
import ChatterModels
import Chatterstream
import Foundation
import Hummingbird

/// An error answered as JSON, `{"error": "<message>", "status": <code>}`, with its HTTP status.
public struct APIError: Error, Equatable, CustomStringConvertible, HTTPResponseError {
    public let status: HTTPResponse.Status
    public let message: String
    /// Seconds after which a retry may succeed (sent as Retry-After), for 503s.
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, _ message: String, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }

    var response: Response {
        struct Body: Encodable { let error: String; let status: Int }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = (try? encoder.encode(Body(error: message, status: status.code))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// The status a synthesis error deserves: the caller's input (400), a missing voice file (404),
    /// an engine that cannot run (503), anything else (500). The message is the error's own, which
    /// already says what to change.
    public init(classifying error: any Error) {
        switch error {
        case let error as APIError:
            self = error
        case let error as StreamingTTSError:
            switch error {
            case .emptyText, .invalidConfig, .textTooLong, .voiceUnusable: self.init(.badRequest, error.description)
            case .voiceNotFound: self.init(.notFound, error.description)
            case .modelUnusable, .deviceUnavailable: self.init(.serviceUnavailable, error.description)
            case .cancelled: self.init(.internalServerError, error.description)
            }
        case let error as T3Error:
            switch error {
            case .invalidParameter, .textTooLong, .emptyText: self.init(.badRequest, error.description)
            default: self.init(.internalServerError, error.description)
            }
        case let error as ConditionalsError:
            // Every case is about the reference the caller chose.
            self.init(.badRequest, "unusable voice: \(error.description)")
        case let error as AudioFrontEndError:
            self.init(.badRequest, "unusable voice: \(error.description)")
        default:
            self.init(.internalServerError, String(describing: error))
        }
    }
}
