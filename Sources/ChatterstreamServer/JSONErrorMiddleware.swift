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
                ? "no endpoint \(request.method) \(request.uri.path): see POST /v1/audio/speech, GET /v1/audio/voices, GET /v1/models, GET /health"
                : error.status.reasonPhrase)
            return APIError(error.status, message).response
        }
    }
}
