import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal HTTP/1.1 server on 127.0.0.1 (an ephemeral port) that serves files the way the hub
/// does, `/{repo}/resolve/{revision}/{file}`, for the model store tests. One connection at a time,
/// `Connection: close` on every response. Faults can be injected per file.
///
/// `@unchecked Sendable`: the accept loop runs on its own thread while tests configure and inspect
/// the server; every mutable field is behind `lock`.
final class LoopbackHubServer: @unchecked Sendable {
    struct LoggedRequest: Sendable {
        let method: String
        let path: String
        let headers: [String: String]  // lower-cased names
    }

    private let lock = NSLock()
    private var files: [String: Data] = [:]  // request path → body
    private var requiredToken: String?
    private var dropAfter: [String: Int] = [:]  // file name → bytes of body sent before hanging up (once)
    private var corrupt: Set<String> = []  // file names served with one byte flipped
    private var redirect = false
    private var pace: (bytes: Int, pause: Double)?
    private var log: [LoggedRequest] = []
    private var stopping = false

    private let listener: Int32
    let port: UInt16
    private let finished = DispatchSemaphore(value: 0)

    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let (fd, port) = try Self.listeningSocket()
        listener = fd
        self.port = port
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "LoopbackHubServer"
        thread.start()
    }

    /// A socket bound to 127.0.0.1 on an ephemeral port, listening with a backlog of 16.
    static func listeningSocket() throws -> (descriptor: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(.init(rawValue: code) ?? .EIO)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// Stops accepting and waits for the accept loop to end (it polls the flag every 50 ms).
    func stop() {
        let wasStopping = lock.withLock {
            defer { stopping = true }
            return stopping
        }
        guard !wasStopping else { return }
        finished.wait()
        close(listener)
    }

    // MARK: Configuration and inspection

    func serve(repository: String, revision: String = "main", file: String, data: Data) {
        lock.withLock { files["/\(repository)/resolve/\(revision)/\(file)"] = data }
    }

    func requireToken(_ token: String?) { lock.withLock { requiredToken = token } }
    func dropConnection(file: String, afterBytes count: Int) { lock.withLock { dropAfter[file] = count } }
    func serveCorrupted(file: String) { lock.withLock { _ = corrupt.insert(file) } }
    /// Send bodies `bytes` at a time with `pause` seconds between sends (a slow but steady link).
    func pace(bytes: Int, pause: Double) { lock.withLock { self.pace = (bytes, pause) } }
    /// Answer `resolve` requests with a 302 to `/cdn/…` on the same server, as the hub does for LFS files.
    func redirectToCDN(_ on: Bool = true) { lock.withLock { redirect = on } }

    var requests: [LoggedRequest] { lock.withLock { log } }
    var requestCount: Int { lock.withLock { log.count } }

    // MARK: Serving

    private func acceptLoop() {
        defer { finished.signal() }
        while !lock.withLock({ stopping }) {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        guard let (method, target, headers) = readRequest(client) else { return }
        let request = LoggedRequest(method: method, path: target, headers: headers)
        enum Plan {
            case status(Int, String)
            case redirect(String)
            case body(Data, start: Int, dropAfter: Int?)
        }
        let plan: Plan = lock.withLock {
            log.append(request)
            var path = target
            if path.hasPrefix("/cdn/") {
                path = "/" + path.dropFirst(5)
            } else if redirect, files[path] != nil {
                return .redirect("/cdn" + path)
            }
            if let requiredToken, headers["authorization"] != "Bearer \(requiredToken)" {
                return .status(401, "Unauthorized")
            }
            guard method == "GET", var data = files[path] else { return .status(404, "Not Found") }
            let name = String(path.split(separator: "/").last ?? "")
            if corrupt.contains(name), !data.isEmpty {
                data[data.startIndex + data.count / 2] ^= 0xff
            }
            var start = 0
            if let range = headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
               let from = Int(range.dropFirst(6).dropLast()) {
                start = from
            }
            return .body(data, start: start, dropAfter: dropAfter.removeValue(forKey: name))
        }
        switch plan {
        case let .status(code, reason):
            let body = Data("\(code) \(reason)\n".utf8)
            respond(client, head: "HTTP/1.1 \(code) \(reason)", headers: ["Content-Length": "\(body.count)"], body: body)
        case let .redirect(location):
            respond(client, head: "HTTP/1.1 302 Found", headers: ["Location": location, "Content-Length": "0"], body: Data())
        case let .body(data, start, dropAfter):
            if start >= data.count && start > 0 {
                respond(client, head: "HTTP/1.1 416 Range Not Satisfiable",
                     headers: ["Content-Range": "bytes */\(data.count)", "Content-Length": "0"], body: Data())
                return
            }
            let body = data.subdata(in: (data.startIndex + start)..<data.endIndex)
            var fields = ["Content-Length": "\(body.count)", "Content-Type": "application/octet-stream",
                          "Accept-Ranges": "bytes"]
            if start > 0 { fields["Content-Range"] = "bytes \(start)-\(data.count - 1)/\(data.count)" }
            let sent = dropAfter.map { body.prefix($0) } ?? body
            respond(client, head: start > 0 ? "HTTP/1.1 206 Partial Content" : "HTTP/1.1 200 OK", headers: fields, body: sent)
        }
    }

    /// Reads up to the blank line; returns the method, target and headers (names lower-cased).
    private func readRequest(_ client: Int32) -> (String, String, [String: String])? {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while buffer.firstRange(of: terminator) == nil {
            let count = recv(client, &chunk, chunk.count, 0)
            guard count > 0, buffer.count < 64 << 10 else { return nil }
            buffer.append(contentsOf: chunk[..<count])
        }
        let text = String(decoding: buffer, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (String(requestLine[0]), String(requestLine[1]), headers)
    }

    private func respond(_ client: Int32, head: String, headers: [String: String], body: Data) {
        var text = head + "\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        text += "Connection: close\r\n\r\n"
        guard transmit(client, Data(text.utf8)) else { return }
        guard let pace = lock.withLock({ pace }) else {
            _ = transmit(client, body)
            return
        }
        var offset = body.startIndex
        while offset < body.endIndex {
            let end = min(offset + pace.bytes, body.endIndex)
            guard transmit(client, body.subdata(in: offset..<end)) else { return }
            offset = end
            Thread.sleep(forTimeInterval: pace.pause)
        }
    }

    private func transmit(_ client: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                // MSG_NOSIGNAL: a client that hung up must not SIGPIPE the test process.
                let sent = send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }
}
