import Foundation
import Synchronization

/// A fixed set of worker threads for data-parallel loops (rows of a GEMV, channels of a conv).
///
/// `parallelFor` splits `0..<count` into contiguous chunks, runs them on the workers and on the
/// calling thread, and returns when all are done. Workers wait on a condition variable between
/// jobs; a job costs a few microseconds to start, small beside the ≥100 µs loops we hand it.
/// `body` is escaping only because workers hold it; it never outlives the call.
/// Calls from several threads at once are serialised.
public final class ThreadPool: @unchecked Sendable {
    /// The pool the ops use. Its size follows `CHATTERSTREAM_THREADS`, else the number of active cores.
    public static let shared = ThreadPool(threadCount: ThreadPool.defaultThreadCount)

    public static var defaultThreadCount: Int {
        if let text = ProcessInfo.processInfo.environment["CHATTERSTREAM_THREADS"], let n = Int(text), n > 0 {
            return n
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// One `parallelFor` call. Workers hold a reference while they run it, so a worker that wakes
    /// late finds its counter exhausted instead of running chunks of a newer job.
    private final class Job: @unchecked Sendable {
        let body: (Int) -> Void
        let chunks: Int
        let nextChunk = Atomic<Int>(0)
        var finishedChunks = 0  // guarded by the pool's condition
        init(body: @escaping (Int) -> Void, chunks: Int) { self.body = body; self.chunks = chunks }
    }

    private let condition = NSCondition()
    private let callerLock = NSLock()
    private var workers: [Thread] = []
    private var generation = 0
    private var job: Job?
    private var shuttingDown = false
    private var threadLimit: Int

    /// Threads that take part in a loop, the caller included. Settable at run time (1 = serial).
    public var threadCount: Int {
        get { condition.lock(); defer { condition.unlock() }; return threadLimit }
        set {
            precondition(newValue >= 1, "thread count must be at least 1")
            callerLock.lock(); defer { callerLock.unlock() }
            condition.lock()
            threadLimit = newValue
            let missing = newValue - 1 - workers.count
            condition.unlock()
            if missing > 0 { for _ in 0..<missing { spawnWorker() } }
        }
    }

    public init(threadCount: Int) {
        precondition(threadCount >= 1, "thread count must be at least 1")
        threadLimit = threadCount
        for _ in 0..<(threadCount - 1) { spawnWorker() }
    }

    /// Ends the worker threads. A pool that is not shut down lives for the rest of the process
    /// (its workers hold it), as the shared pool does.
    public func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.broadcast()
        condition.unlock()
    }

    private func spawnWorker() {
        // Workers keep the pool alive while they wait (a strong capture); `shutDown()` releases them.
        let thread = Thread { [self] in self.workerLoop() }
        thread.stackSize = 1 << 20
        thread.start()
        workers.append(thread)
    }

    private func workerLoop() {
        var seenGeneration = 0
        while true {
            condition.lock()
            while generation == seenGeneration && !shuttingDown { condition.wait() }
            if shuttingDown { condition.unlock(); return }
            seenGeneration = generation
            let current = job
            condition.unlock()
            if let current { run(current) }
        }
    }

    private func run(_ job: Job) {
        var done = 0
        while true {
            let chunk = job.nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            if chunk >= job.chunks { break }
            job.body(chunk)
            done += 1
        }
        if done > 0 {
            condition.lock()
            job.finishedChunks += done
            if job.finishedChunks == job.chunks { condition.broadcast() }
            condition.unlock()
        }
    }

    /// Runs `body` over disjoint sub-ranges covering `0..<count`, each at least `minimumChunk` long
    /// (except the last), in parallel. `body` must be safe to call concurrently on disjoint ranges.
    public func parallelFor(_ count: Int, minimumChunk: Int = 1, _ body: @escaping (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let threads = threadCount
        let maxChunks = max(1, count / max(1, minimumChunk))
        let chunks = min(threads, maxChunks)
        if chunks <= 1 { body(0..<count); return }
        let size = (count + chunks - 1) / chunks
        let current = Job(body: { chunk in
            let start = chunk * size
            let end = min(count, start + size)
            if start < end { body(start..<end) }
        }, chunks: chunks)
        callerLock.lock(); defer { callerLock.unlock() }
        condition.lock()
        job = current
        generation &+= 1
        condition.broadcast()
        condition.unlock()
        run(current)
        condition.lock()
        while current.finishedChunks < current.chunks { condition.wait() }
        job = nil
        condition.unlock()
    }
}
