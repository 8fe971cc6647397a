import Hummingbird

/// Answers the router's own errors (no such route, a method the route does not take) as the same
/// JSON the handlers use, so a client parses one error shape whatever went wrong.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound
                ? "no endpoint \(request.method) \(request.uri.path): see GET /health, GET /v1/info, POST /v1/speech, POST /v1/hls"
                : error.status.reasonPhrase)
            return APIError(error.status, message).response
        }
    }
}
