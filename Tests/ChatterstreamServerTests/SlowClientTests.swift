import ChatterstreamServer
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// Slowloris clients: bytes trickled often enough that the connection is never idle. The idle
/// timeout (30 s here) never fires for them; `SlowClientGuard` must.
@Suite struct SlowClientTests {
    /// Sends `request` from `from` on, `step` bytes every 100 ms, until the server closes the connection
    /// or everything is sent; returns the seconds until the close (nil if it stayed open) and what
    /// the server answered.
    static func trickle(port: Int, head: String, body: Data, from: Int, step: Int) throws -> (closedAfter: Double?, answer: String) {
        let connection = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 20)
        defer { connection.close() }
        let request = Data(head.utf8) + body
        try connection.sendRaw(request.prefix(from))
        let started = Date()
        var sent = from
        while sent < request.count {
            Thread.sleep(forTimeInterval: 0.1)
            if connection.isClosedByServer { return (Date().timeIntervalSince(started), "") }
            let next = min(request.count, sent + step)
            do { try connection.sendRaw(request[sent..<next]) } catch { return (Date().timeIntervalSince(started), "") }
            sent = next
        }
        let answer = (try? connection.readHead(thenAtLeast: 0)) ?? ""
        return (connection.isClosedByServer && answer.isEmpty ? Date().timeIntervalSince(started) : nil, answer)
    }

    static func withServer<T>(_ body: (Int) async throws -> T) async throws -> T {
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config)
        return try await RunningSpeechServer.with(engine: engine, configure: {
            $0.idleTimeout = .seconds(30)
            $0.requestHeadTimeout = .seconds(1)
            $0.minimumBodyBytesPerSecond = 100
        }) { server in try await body(server.port) }
    }

    @Test func aRequestHeadTrickledByteByByteIsCutOff() async throws {
        let head = "POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + String(repeating: "a", count: 200) + "\r\n\r\n"
        let outcome = try await Self.withServer { port in
            try await offThePool { try Self.trickle(port: port, head: head, body: Data(), from: 40, step: 1) }
        }
        print("head trickled at 10 B/s (request timeout 1 s, idle timeout 30 s): closed after \(outcome.closedAfter.map { String(format: "%.2f s", $0) } ?? "never")")
        let closedAfter = try #require(outcome.closedAfter, "the connection stayed open for 20 s of trickling")
        #expect(closedAfter >= 0.8 && closedAfter < 5)
    }

    @Test func aBodyAboveTheMinimumRateIsReadAndOneBelowItIsCutOff() async throws {
        let body = Data(repeating: UInt8(ascii: "x"), count: 1200)
        let head = "POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        let (fast, slow) = try await Self.withServer { port in
            async let fast = offThePool { try Self.trickle(port: port, head: head, body: body, from: head.utf8.count, step: 40) }  // 400 B/s
            async let slow = offThePool { try Self.trickle(port: port, head: head, body: body, from: head.utf8.count, step: 3) }   // 30 B/s
            return try await (fast, slow)
        }
        print("body at 400 B/s (minimum 100 B/s): \(fast.answer.split(separator: "\r\n").first ?? "no answer"); at 30 B/s: closed after \(slow.closedAfter.map { String(format: "%.2f s", $0) } ?? "never")")
        // The fast body is read whole and answered (400: it is not JSON), not cut.
        #expect(fast.closedAfter == nil && fast.answer.hasPrefix("HTTP/1.1 400"))
        // The slow one: 1 s of grace plus 1 s per 100 bytes against 0.3 s per 100 bytes arriving, cut
        // after ≈ 1.4 s, long before its 4 s of sending.
        let closedAfter = try #require(slow.closedAfter, "a body trickled at 30 B/s was read to the end")
        #expect(closedAfter < 3.5)
    }
}
