import Foundation
import Synchronization

/// Runs executing on an engine's inference queue, so that a process that exits while one is still
/// computing (a server past its drain deadline, a test process whose last request was cancelled, a
/// CLI interrupted mid-chunk) stops them before the libraries under them go away.
///
/// Why: OpenBLAS (Debian's DYNAMIC_ARCH build) clears its kernel table in a shared-library
/// destructor at exit; a GEMM still running on another thread then calls through a null pointer
/// (SIGSEGV at exit, seen in the test process). Handlers registered with `atexit` run before
/// shared-library destructors, so the one installed for `shared` cancels every run in flight and
/// waits for them to return (each checks its cancellation before every decode step and every
/// rendered chunk).
final class InFlightRuns: Sendable {
    /// The registry every engine uses, drained at process exit.
    static let shared: InFlightRuns = {
        atexit { InFlightRuns.shared.cancelAndWait(seconds: InFlightRuns.exitGraceSeconds) }
        return InFlightRuns()
    }()
    /// How long exit waits for the runs to notice their cancellation (one decode step or one S3Gen
    /// chunk at full size is well under this).
    static let exitGraceSeconds = 10.0

    private let state = Mutex<(count: Int, cancellations: [ObjectIdentifier: SynthesisCancellation])>((0, [:]))

    /// Runs `body` counted as in flight; `cancellation`, if given, is cancelled by `cancelAndWait`.
    func run<T>(cancellation: SynthesisCancellation?, _ body: () throws -> T) rethrows -> T {
        let key = cancellation.map(ObjectIdentifier.init)
        state.withLock { s in
            s.count += 1
            if let key, let cancellation { s.cancellations[key] = cancellation }
        }
        defer {
            state.withLock { s in
                s.count -= 1
                if let key { s.cancellations[key] = nil }
            }
        }
        return try body()
    }

    /// Runs in flight now.
    var count: Int { state.withLock { $0.count } }

    /// Cancels every run in flight and waits until none is left or `seconds` have passed.
    func cancelAndWait(seconds: Double) {
        for cancellation in state.withLock({ Array($0.cancellations.values) }) { cancellation.cancel() }
        let deadline = Date().addingTimeInterval(seconds)
        while count > 0 && Date() < deadline { usleep(5_000) }
    }
}
