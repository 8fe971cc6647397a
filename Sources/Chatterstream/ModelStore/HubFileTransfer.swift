import ChatterModels
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP attempt at one file: GET (with `Range: bytes=N-` when `N` bytes are already on disk),
/// appending the body to the partial file and hashing it as it arrives, so a completed download
/// needs no second pass to verify.
///
/// `@unchecked Sendable`: URLSession calls the delegate methods on its own serial queue while the
/// async caller waits; all mutable state is behind `lock`, and the continuation is resumed exactly
/// once, from `didCompleteWithError` (which URLSession always calls, cancelled tasks included).
final class HubFileTransfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    enum Outcome {
        /// The server sent the whole (rest of the) file.
        case complete
        /// The connection dropped or ended early after this attempt wrote some bytes: resume.
        case resumable(reason: String)
        /// The partial file cannot be resumed (416, or a Content-Range for other bytes): start over.
        case restart(reason: String)
    }

    struct Result {
        let outcome: Outcome
        /// Bytes now in the partial file, and the hash of exactly those bytes.
        let bytesOnDisk: Int64
        let hasher: SHA256
        /// The full size, when the server said it.
        let total: Int64?
    }

    struct Request {
        let url: URL
        let file: PublishedFile
        let repository: String
        let revision: String
        let endpoint: String
        let token: String?
        let timeout: TimeInterval
    }

    private let request: Request
    private let maxSize: Int64
    private let progress: @Sendable (ModelStoreEvent) -> Void
    private let originalHost: String?

    private let lock = NSLock()
    private let handle: FileHandle
    private let partialPath: String
    private var hasher: SHA256
    private var bytesOnDisk: Int64
    private let startOffset: Int64
    private var receivedThisAttempt: Int64 = 0
    private var total: Int64?
    private var failure: ModelStoreError?
    private var restartReason: String?
    private var lastProgress = ContinuousClock.now
    private var continuation: CheckedContinuation<Result, any Error>?

    private init(request: Request, handle: FileHandle, partialPath: String, offset: Int64, hasher: SHA256,
                 progress: @escaping @Sendable (ModelStoreEvent) -> Void) {
        self.request = request
        self.maxSize = Int64(request.file.sizeLimit)
        self.progress = progress
        self.originalHost = request.url.host
        self.handle = handle
        self.partialPath = partialPath
        self.startOffset = offset
        self.bytesOnDisk = offset
        self.hasher = hasher
    }

    /// Runs one attempt. `hasher` must cover exactly the `offset` bytes already in `partial`.
    static func run(_ request: Request, partial: URL, offset: Int64, hasher: SHA256,
                    progress: @escaping @Sendable (ModelStoreEvent) -> Void) async throws -> Result {
        let manager = FileManager.default
        if !manager.fileExists(atPath: partial.path) {
            guard manager.createFile(atPath: partial.path, contents: nil) else {
                throw ModelStoreError.io(path: partial.path, reason: "cannot create the file")
            }
        }
        let handle: FileHandle
        do {
            handle = try FileHandle(forWritingTo: partial)
            try handle.truncate(atOffset: UInt64(offset))
            try handle.seek(toOffset: UInt64(offset))
        } catch {
            throw ModelStoreError.io(path: partial.path, reason: "\(error)")
        }
        defer { try? handle.close() }

        let transfer = HubFileTransfer(request: request, handle: handle, partialPath: partial.path, offset: offset,
                                       hasher: hasher, progress: progress)
        let configuration = sessionConfiguration(requestTimeout: request.timeout)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }

        var urlRequest = URLRequest(url: request.url)
        urlRequest.httpMethod = "GET"
        // Bytes as stored: a transparently decompressed body would not match Content-Length/Range.
        urlRequest.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        urlRequest.setValue("chatterstream", forHTTPHeaderField: "User-Agent")
        if offset > 0 { urlRequest.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
        if let token = request.token { urlRequest.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let task = session.dataTask(with: urlRequest)

        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.lock.withLock { transfer.continuation = continuation }
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        // The hub redirects large files to a CDN with a signed URL. Keep the Range header, and never
        // send the hub token to another host.
        var next = newRequest
        if startOffset > 0 { next.setValue("bytes=\(startOffset)-", forHTTPHeaderField: "Range") }
        next.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        if next.url?.host != originalHost {
            next.setValue(nil, forHTTPHeaderField: "Authorization")
        } else if let token = request.token {
            next.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let disposition: URLSession.ResponseDisposition = lock.withLock {
            guard let http = response as? HTTPURLResponse else {
                failure = .badResponse(file: request.file.name, url: request.url.absoluteString, reason: "not an HTTP response")
                return .cancel
            }
            let url = http.url?.absoluteString ?? request.url.absoluteString
            switch http.statusCode {
            case 200:
                if startOffset > 0 {
                    // The server ignored the Range: the body is the whole file, start from zero.
                    do {
                        try handle.truncate(atOffset: 0)
                        try handle.seek(toOffset: 0)
                    } catch {
                        failure = .io(path: partialPath, reason: "\(error)")
                        return .cancel
                    }
                    hasher = SHA256()
                    bytesOnDisk = 0
                }
                total = http.expectedContentLength >= 0 ? http.expectedContentLength : nil
            case 206:
                guard let range = http.value(forHTTPHeaderField: "Content-Range").flatMap(Self.parseContentRange),
                      range.start == startOffset else {
                    restartReason = "the server sent a range other than bytes=\(startOffset)-"
                    return .cancel
                }
                total = range.total
            case 416:
                restartReason = "the server cannot resume from byte \(startOffset)"
                return .cancel
            case 401, 403:
                failure = .unauthorized(repository: request.repository, status: http.statusCode, url: url,
                                        tokenSent: request.token != nil)
                return .cancel
            case 404:
                failure = .notFound(repository: request.repository, revision: request.revision,
                                    file: request.file.name, url: url)
                return .cancel
            default:
                failure = .httpStatus(status: http.statusCode, url: url)
                return .cancel
            }
            // Refuse a file of the wrong size before downloading gigabytes of it.
            if let total, !request.file.admits(size: Int(total)) {
                failure = tooLarge(total)
                return .cancel
            }
            return .allow
        }
        completionHandler(disposition)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        // Cancelling is done outside the lock: URLSession may call back into the delegate.
        let (event, cancel): (ModelStoreEvent?, Bool) = lock.withLock {
            guard failure == nil else { return (nil, false) }
            if bytesOnDisk + Int64(data.count) > maxSize {
                failure = tooLarge(bytesOnDisk + Int64(data.count))
                return (nil, true)
            }
            do {
                try handle.write(contentsOf: data)
            } catch {
                failure = .io(path: partialPath, reason: "\(error)")
                return (nil, true)
            }
            hasher.update(data)
            bytesOnDisk += Int64(data.count)
            receivedThisAttempt += Int64(data.count)
            let now = ContinuousClock.now
            guard now - lastProgress >= .milliseconds(100) || bytesOnDisk == total else { return (nil, false) }
            lastProgress = now
            return (.downloadProgress(file: request.file.name, bytes: bytesOnDisk, total: total), false)
        }
        if cancel { dataTask.cancel() }
        if let event { progress(event) }
    }

    /// The error for a file of `size` bytes that cannot be the published one.
    private func tooLarge(_ size: Int64) -> ModelStoreError {
        request.file.isPinned ? .sizeMismatch(file: request.file.name, expected: request.file.identities.map(\.size), actual: size)
            : .unpinnedTooLarge(file: request.file.name, limit: request.file.sizeLimit, actual: size)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (continuation, result) = lock.withLock {
            let continuation = self.continuation
            self.continuation = nil
            return (continuation, outcome(of: error))
        }
        continuation?.resume(with: result)
    }

    /// How the attempt ended; called under `lock`.
    private func outcome(of error: (any Error)?) -> Swift.Result<Result, any Error> {
        func finished(_ outcome: Outcome) -> Swift.Result<Result, any Error> {
            .success(Result(outcome: outcome, bytesOnDisk: bytesOnDisk, hasher: hasher, total: total))
        }
        if let failure { return .failure(failure) }
        if let restartReason { return finished(.restart(reason: restartReason)) }
        if let error {
            let reason = Self.describe(error)
            if let code = (error as? URLError)?.code {
                if code == .cancelled { return .failure(CancellationError()) }
                if receivedThisAttempt > 0 { return finished(.resumable(reason: reason)) }
                if Self.unreachableCodes.contains(code) {
                    return .failure(ModelStoreError.unreachable(endpoint: request.endpoint, reason: reason))
                }
            } else if receivedThisAttempt > 0 {
                return finished(.resumable(reason: reason))
            }
            return .failure(ModelStoreError.badResponse(file: request.file.name, url: request.url.absoluteString, reason: reason))
        }
        if let total, bytesOnDisk < total {
            guard receivedThisAttempt > 0 else {
                return .failure(ModelStoreError.badResponse(file: request.file.name, url: request.url.absoluteString,
                                                            reason: "the body ended before any byte"))
            }
            return finished(.resumable(reason: "the connection closed after \(bytesOnDisk) of \(total) bytes"))
        }
        return finished(.complete)
    }

    /// The session one transfer runs in. `timeoutIntervalForRequest` is the longest silence
    /// tolerated (connecting included), so a dead or silent endpoint fails fast; the resource
    /// timeout is generous because the large files take minutes.
    static func sessionConfiguration(requestTimeout: TimeInterval) -> URLSessionConfiguration {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = requestTimeout
        configuration.timeoutIntervalForResource = 7 * 24 * 3600
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        return configuration
    }

    private static let unreachableCodes: Set<URLError.Code> = [
        .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet, .timedOut,
        .networkConnectionLost, .secureConnectionFailed, .internationalRoamingOff, .dataNotAllowed,
    ]

    private static func describe(_ error: any Error) -> String {
        if let urlError = error as? URLError {
            return "\(urlError.localizedDescription) [URLError \(urlError.code.rawValue)]"
        }
        return "\(error)"
    }

    /// `bytes START-END/TOTAL` (TOTAL may be `*`).
    static func parseContentRange(_ value: String) -> (start: Int64, total: Int64?)? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = trimmed.dropFirst(6)
        let parts = spec.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let dash = parts[0].firstIndex(of: "-"),
              let start = Int64(parts[0][..<dash].trimmingCharacters(in: .whitespaces)) else { return nil }
        return (start, parts[1] == "*" ? nil : Int64(parts[1].trimmingCharacters(in: .whitespaces)))
    }
}
