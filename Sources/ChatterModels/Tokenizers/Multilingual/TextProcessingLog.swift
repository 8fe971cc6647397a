import Foundation

/// Where the multilingual front end says which upstream text processing it skips (upstream's
/// `logger.warning` when a package or data file is missing). Each message is delivered once per log,
/// however many texts hit it.
public final class TextProcessingLog: @unchecked Sendable {
    private let sink: @Sendable (String) -> Void
    private let lock = NSLock()
    private var delivered: Set<String> = []

    /// `sink` receives each distinct message once; by default it is written to standard error.
    public init(sink: @escaping @Sendable (String) -> Void = TextProcessingLog.standardError) {
        self.sink = sink
    }

    public func warnOnce(_ message: String) {
        lock.lock()
        let isNew = delivered.insert(message).inserted
        lock.unlock()
        if isNew { sink(message) }
    }

    /// The messages delivered so far.
    public var messages: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return delivered
    }

    public static let standardError: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("chatterstream: warning: \(message)\n".utf8))
    }
}
