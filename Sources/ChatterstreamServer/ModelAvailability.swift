import Synchronization

/// Whether the engine can serve: the server loads the model in the background when it starts, and
/// answers 503 until then (or for good, with the reason, if loading failed: restart after fixing it).
final class ModelAvailability: Sendable {
    enum State: Sendable, Equatable {
        case loading
        case ready
        case failed(String)
        /// Shutting down: the responses in flight finish, new work is refused.
        case draining
    }

    private let state = Mutex(State.loading)

    var current: State { state.withLock { $0 } }

    func set(_ new: State) { state.withLock { $0 = new } }

    /// Throws the 503 a request gets while the model is not ready.
    func requireReady() throws(APIError) {
        switch current {
        case .ready: return
        case .loading: throw APIError(.serviceUnavailable, "the model is still loading; retry shortly (GET /health says \"loaded\": true when it is ready)", retryAfterSeconds: 5)
        case let .failed(reason): throw APIError(.serviceUnavailable, "the model failed to load: \(reason)")
        case .draining: throw APIError(.serviceUnavailable, "the server is shutting down", retryAfterSeconds: 5)
        }
    }
}
