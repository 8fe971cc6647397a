import ChatterstreamServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `SpeechServer` running on 127.0.0.1 at a free port for one test, and a small URLSession client
/// for it. Every wait is bounded.
struct RunningSpeechServer {
    let server: SpeechServer
    let port: Int
    private let task: Task<Void, Error>
    private let session: URLSession

    struct Timeout: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// Runs `body` against a fresh server on a free loopback port, then stops the server.
    static func with<T>(engine: some SpeechEngine, configure: (inout SpeechServer.Configuration) -> Void = { _ in },
                        _ body: (RunningSpeechServer) async throws -> T) async throws -> T {
        var configuration = SpeechServer.Configuration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configure(&configuration)
        let server = try SpeechServer(engine: engine, configuration: configuration)
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { portSink.finish() }
            try await server.run { port in portSink.yield(port) }
        }
        let port: Int
        do {
            port = try await withTimeout(seconds: 30, "the server to listen") {
                for await port in ports { return port }
                throw Timeout(what: "a port (the server stopped before listening)")
            }
        } catch {
            task.cancel()
            throw error
        }
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = 120
        let running = RunningSpeechServer(server: server, port: port, task: task, session: URLSession(configuration: sessionConfiguration))
        do {
            let result = try await body(running)
            await running.stop()
            return result
        } catch {
            await running.stop()
            throw error
        }
    }

    private func stop() async {
        session.invalidateAndCancel()
        task.cancel()
        _ = await task.result
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    struct Reply {
        let status: Int
        let body: Data
        let headers: [String: String]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? {
            headers.first { $0.key.lowercased() == name.lowercased() }?.value
        }
        /// The body as a JSON object (empty when it is not one).
        var json: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
        /// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
        var error: [String: Any]? { json["error"] as? [String: Any] }
        var errorMessage: String? { error?["message"] as? String }
        var errorType: String? { error?["type"] as? String }
        var errorParam: String? { error?["param"] as? String }
    }

    func get(_ path: String) async throws -> Reply {
        try await send(URLRequest(url: URL(string: baseURL + path)!))
    }

    /// A body-less request with any method.
    func request(_ method: String, _ path: String) async throws -> Reply {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        return try await send(request)
    }

    func post(_ path: String, json: [String: Any]) async throws -> Reply {
        try await post(path, body: try JSONSerialization.data(withJSONObject: json))
    }

    func post(_ path: String, body: Data, contentType: String = "application/json", headers: [String: String] = [:]) async throws -> Reply {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = "POST"
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = body
        return try await send(request)
    }

    func get(_ path: String, headers: [String: String]) async throws -> Reply {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        return try await send(request)
    }

    private func send(_ request: URLRequest) async throws -> Reply {
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields { headers["\(key)"] = "\(value)" }
        return Reply(status: http.statusCode, body: data, headers: headers)
    }
}

/// Runs `operation`, throwing `RunningSpeechServer.Timeout` if it takes longer than `seconds`.
func withTimeout<T: Sendable>(seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw RunningSpeechServer.Timeout(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Runs blocking work (a subprocess, a blocking socket) on a thread of its own, so it never holds
/// one of the few threads that Swift concurrency, and so the server under test, runs on, nor one of
/// Dispatch's global threads (as wide as the cores: two blocked ones starved the URLSession work of
/// other suites, e.g. ModelStoreTests' timeouts, while the SDK and load tests ran).
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
