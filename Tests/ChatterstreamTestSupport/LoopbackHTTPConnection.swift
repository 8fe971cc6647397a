import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking TCP connection to 127.0.0.1 that speaks just enough HTTP/1.1 to send a request, read
/// part of a streamed answer and hang up in the middle: what a client that disconnects does, which
/// URLSession does not let a test time precisely.
package final class LoopbackHTTPConnection {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private var descriptor: Int32

    package init(port: Int, receiveTimeoutSeconds: Int = 30) throws {
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw Failure(description: "socket() failed: errno \(errno)") }
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close()
            throw Failure(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)")
        }
    }

    /// Sends a POST with a JSON body.
    package func post(_ path: String, json: Data) throws {
        var request = Data("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\n\r\n".utf8)
        request.append(json)
        try sendRaw(request)
    }

    /// `MSG_NOSIGNAL`: a send to a connection the server closed fails with EPIPE instead of killing
    /// the test process with SIGPIPE.
    #if canImport(Glibc)
    private static let noSignal = Int32(MSG_NOSIGNAL)
    #else
    private static let noSignal: Int32 = 0
    #endif

    /// Whether the server has closed the connection (without waiting; unread data is left in place).
    package var isClosedByServer: Bool {
        var byte: UInt8 = 0
        let n = recv(descriptor, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    /// Sends bytes as they are (a partial request, for a client that stalls).
    package func sendRaw(_ request: Data) throws {
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(descriptor, raw.baseAddress! + sent, raw.count - sent, Self.noSignal)
                guard n > 0 else { throw Failure(description: "send failed: errno \(errno)") }
                sent += n
            }
        }
    }

    /// Reads until the response head and at least `bodyBytes` bytes after it have arrived; returns
    /// the head. Throws on timeout or when the server closes first.
    package func readHead(thenAtLeast bodyBytes: Int) throws -> String {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let end = received.range(of: Data("\r\n\r\n".utf8)), received.count - end.upperBound >= bodyBytes {
                return String(decoding: received[..<end.lowerBound], as: UTF8.self)
            }
            let n = recv(descriptor, &buffer, buffer.count, 0)
            guard n > 0 else {
                throw Failure(description: "the connection ended (or timed out) after \(received.count) bytes: \(String(decoding: received.prefix(200), as: UTF8.self))")
            }
            received.append(contentsOf: buffer[0..<n])
        }
    }

    /// Everything the server sends until it closes the connection (or the receive timeout passes).
    package func readToEnd() throws -> Data {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(descriptor, &buffer, buffer.count, 0)
            if n == 0 { return received }
            guard n > 0 else { throw Failure(description: "receive failed or timed out after \(received.count) bytes: errno \(errno)") }
            received.append(contentsOf: buffer[0..<n])
        }
    }

    /// Everything the server sends until the end of a chunked body (`0\r\n\r\n`) or until it closes.
    package func readToChunkedEnd() throws -> Data {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let end = Data("0\r\n\r\n".utf8)
        while !(received.count >= end.count && received.suffix(end.count) == end) {
            let n = recv(descriptor, &buffer, buffer.count, 0)
            if n == 0 { return received }
            guard n > 0 else { throw Failure(description: "receive failed or timed out after \(received.count) bytes: errno \(errno)") }
            received.append(contentsOf: buffer[0..<n])
        }
        return received
    }

    package func close() {
        guard descriptor >= 0 else { return }
        #if canImport(Glibc)
        _ = Glibc.close(descriptor)
        #else
        _ = Darwin.close(descriptor)
        #endif
        descriptor = -1
    }

    deinit { close() }
}
