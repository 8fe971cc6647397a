import Foundation
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's, plus the connection, so a handler can notice a client that
/// hangs up (`HangUpWatcher`).
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// `Authorization: Bearer <key>` on every endpoint but /health (liveness stays open for probes).
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKey: String?

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let apiKey, request.uri.path != "/health" else { return try await next(request, context) }
        let given = request.headers[.authorization] ?? ""
        guard given.hasPrefix("Bearer "), Self.constantTimeEqual(Array(given.utf8.dropFirst(7)), Array(apiKey.utf8)) else {
            return APIError(.unauthorized, "missing or wrong API key: send Authorization: Bearer <key>").response
        }
        return try await next(request, context)
    }

    /// Compares without stopping at the first difference, so timing does not reveal the key.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}

/// One log line per request (method, path, status, time; never the body or its text) and the
/// request counters of /metrics.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let route = Self.route(request.uri.path)
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - started
        logger.info("\(request.method) \(request.uri.path) \(response.status.code) \(elapsed.formatted(.units(allowed: [.milliseconds])))")
        metrics.request(route: route, status: response.status.code)
        return response
    }

    /// The path with ids folded (bounded label values).
    static func route(_ path: String) -> String {
        if path.hasPrefix("/v1/hls/") { return "/v1/hls/:id" }
        if path.hasPrefix("/v1/audio/voices/") { return "/v1/audio/voices/:id" }
        let known = ["/health", "/ready", "/metrics", "/v1/models", "/v1/info", "/v1/audio/speech", "/v1/speech", "/v1/audio/voices", "/v1/hls"]
        return known.contains(path) ? path : "other"
    }
}
