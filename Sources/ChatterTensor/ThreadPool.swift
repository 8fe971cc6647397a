import CChatterKernels
import Foundation
import Synchronization

/// A fixed set of worker threads for data-parallel loops (rows of a GEMV, channels of a conv).
///
/// `parallelFor` splits `0..<count` into contiguous chunks, runs them on the workers and on the
/// calling thread, and returns when all are done. `body` is escaping only because workers hold it;
/// it never outlives the call.
///
/// Between jobs a worker first spins for `spinNanoseconds` watching for the next one, then sleeps on
/// a condition variable. A T3 decode step is ~150 GEMVs of 0.1–0.4 ms each, a few µs apart; waking a
/// sleeping thread costs tens of µs in a VM (an IPI to a halted vCPU), and the caller then waits the
/// same again for the worker's last chunk, so sleeping between back-to-back jobs cost up to a tenth of
/// each step. The caller likewise spins briefly for the workers' last chunks before it sleeps.
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
        /// Chunks finished; the caller spins on it, and sleeps on the pool's condition after that.
        let finishedChunks = Atomic<Int>(0)
        init(body: @escaping (Int) -> Void, chunks: Int) { self.body = body; self.chunks = chunks }
    }

    private let condition = NSCondition()
    private let callerLock = NSLock()
    private var workers: [Thread] = []
    private var generation = 0
    /// `generation`, readable without the lock, for workers spinning between jobs.
    private let publishedGeneration = Atomic<Int>(0)
    /// Sleeping threads waiting on `condition` (workers and a waiting caller), so that a job that
    /// finds everyone spinning skips the broadcast syscall.
    private var sleepers = 0
    /// How long a worker spins for the next job, and a caller for the last chunks, before sleeping.
    public let spinNanoseconds: UInt64

    /// `CHATTERSTREAM_SPIN_US` (microseconds; 0 = always sleep), else 200 µs: long enough to span
    /// the gaps inside a decode step, short enough not to burn a core between steps.
    public static var defaultSpinNanoseconds: UInt64 {
        if let text = ProcessInfo.processInfo.environment["CHATTERSTREAM_SPIN_US"], let us = UInt64(text) { return us * 1000 }
        return 200_000
    }
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

    public init(threadCount: Int, spinNanoseconds: UInt64 = ThreadPool.defaultSpinNanoseconds) {
        precondition(threadCount >= 1, "thread count must be at least 1")
        threadLimit = threadCount
        self.spinNanoseconds = spinNanoseconds
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
            spin(until: { self.publishedGeneration.load(ordering: .acquiring) != seenGeneration })
            condition.lock()
            while generation == seenGeneration && !shuttingDown {
                sleepers += 1
                condition.wait()
                sleepers -= 1
            }
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
        if done > 0, job.finishedChunks.wrappingAdd(done, ordering: .acquiringAndReleasing).newValue == job.chunks {
            // The caller may have given up spinning: taking the lock orders this against its check.
            condition.lock()
            if sleepers > 0 { condition.broadcast() }
            condition.unlock()
        }
    }

    /// Spins (with a pause hint) until `ready()` or `spinNanoseconds` have passed; true if ready.
    @discardableResult
    private func spin(until ready: () -> Bool) -> Bool {
        guard spinNanoseconds > 0 else { return ready() }
        let deadline = DispatchTime.now().uptimeNanoseconds + spinNanoseconds
        while true {
            for _ in 0..<64 {
                if ready() { return true }
                chatter_spin_pause()
            }
            if DispatchTime.now().uptimeNanoseconds >= deadline { return ready() }
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
        publishedGeneration.store(generation, ordering: .releasing)
        if sleepers > 0 { condition.broadcast() }
        condition.unlock()
        run(current)
        let finished = { current.finishedChunks.load(ordering: .acquiring) == current.chunks }
        if !spin(until: finished) {
            condition.lock()
            while !finished() {
                sleepers += 1
                condition.wait()
                sleepers -= 1
            }
            condition.unlock()
        }
        condition.lock()
        job = nil
        condition.unlock()
    }
}
