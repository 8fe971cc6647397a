import ChatterstreamServer
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM drains: the response in flight finishes complete, then the server stops (new connections
/// are refused) well within the drain deadline.
@Suite(.serialized) struct DrainTests {
    @Test func sigtermFinishesTheResponseInFlightThenStops() async throws {
        var options = TinySpeechModels.config
        options.seed = 61
        let tts = StreamingTTS(models: TinySpeechModels.shared, options: options)
        var direct = Data()
        for try await chunk in tts.synthesize("Finish me while draining.") { direct.append(chunk.pcm) }
        let engine = DecodeObservingEngine(tts: tts, stepDelay: 0.03)
        var configuration = SpeechServer.Configuration()
        configuration.port = 0
        configuration.drainTimeout = .seconds(20)
        let server = try SpeechServer(engine: engine, configuration: configuration)
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let serving = Task { try await server.runUntilSignalled { sink.yield($0) } }
        var port = 0
        for await p in ports { port = p; break }
        let request = try JSONSerialization.data(withJSONObject: ["input": "Finish me while draining.", "response_format": "pcm"])
        let listening = port
        let reading = Task {
            try await offThePool { () -> Data in
                let connection = try LoopbackHTTPConnection(port: listening)
                try connection.sendRaw(Data("POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: \(request.count)\r\n\r\n".utf8) + request)
                return try connection.readToEnd()
            }
        }
        // Signal once the run is under way (decode steps counted), not before.
        let deadline = ContinuousClock.now + .seconds(20)
        while engine.steps < 5 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let stepsAtSignal = engine.steps
        kill(getpid(), SIGTERM)
        let raw = try await reading.value
        let started = ContinuousClock.now
        try await serving.value
        let stopped = ContinuousClock.now - started
        let text = String(decoding: raw, as: UTF8.self)
        let complete = raw.count >= 5 && raw.suffix(5) == Data("0\r\n\r\n".utf8)
        // The chunked body: sum the chunk sizes.
        var body = 0
        if let headEnd = raw.range(of: Data("\r\n\r\n".utf8)) {
            var index = headEnd.upperBound
            while let lineEnd = raw[index...].range(of: Data("\r\n".utf8)),
                  let size = Int(String(decoding: raw[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0 {
                body += size
                index = lineEnd.upperBound + size + 2
            }
        }
        print("SIGTERM at decode step \(stepsAtSignal): response \(text.split(separator: "\r\n").first ?? ""), \(body) bytes of PCM (engine \(direct.count)), complete \(complete); server stopped \(stopped) after the response")
        #expect(text.hasPrefix("HTTP/1.1 200"))
        #expect(complete && body == direct.count, "the response in flight was cut by the drain")
        #expect(throws: (any Error).self) { _ = try LoopbackHTTPConnection(port: listening) }
    }

    /// With a drain delay, a load balancer polling /ready sees 503 on new connections while the
    /// server still accepts them (and liveness stays 200); after the delay the listener closes.
    @Test func drainDelayAnswersNotReadyWhileStillAccepting() async throws {
        var configuration = SpeechServer.Configuration()
        configuration.port = 0
        configuration.drainDelay = .seconds(2)
        configuration.drainTimeout = .seconds(10)
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config)
        let server = try SpeechServer(engine: engine, configuration: configuration)
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let serving = Task { try await server.runUntilSignalled { sink.yield($0) } }
        var port = 0
        for await p in ports { port = p; break }
        let listening = port
        func status(_ path: String) async throws -> String {
            try await offThePool {
                let connection = try LoopbackHTTPConnection(port: listening)
                defer { connection.close() }
                try connection.sendRaw(Data("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
                return String(String(decoding: try connection.readToEnd(), as: UTF8.self).prefix(12))
            }
        }
        // Ready once the model is (already) loaded.
        let deadline = ContinuousClock.now + .seconds(10)
        var before = try await status("/ready")
        while before != "HTTP/1.1 200" && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            before = try await status("/ready")
        }
        let signalled = ContinuousClock.now
        kill(getpid(), SIGTERM)
        try await Task.sleep(for: .milliseconds(300))
        let ready = try await status("/ready"), health = try await status("/health")
        try await serving.value
        let stopped = ContinuousClock.now - signalled
        print("drain delay 2 s: /ready \(before) before SIGTERM, \(ready) during the delay, /health \(health); stopped \(stopped) after the signal")
        #expect(before == "HTTP/1.1 200")
        #expect(ready == "HTTP/1.1 503")
        #expect(health == "HTTP/1.1 200")
        #expect(stopped >= .seconds(2) && stopped < .seconds(8))
        #expect(throws: (any Error).self) { _ = try LoopbackHTTPConnection(port: listening) }
    }
}
