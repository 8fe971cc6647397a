import COpenBLAS
import Foundation
import Synchronization

/// Who runs a GEMM in parallel: OpenBLAS's own threads (the default), or our `ThreadPool`, each
/// worker calling a single-threaded OpenBLAS on its share of the output.
///
/// Why: two thread pools on two cores fight. OpenBLAS's workers spin and yield for ~100 ms after
/// each call while our pool runs the softmax, norms and activations between GEMMs (measured ~15 %
/// of the CFM estimator in `sched_yield`). Inside `withPoolThreadedGEMMs`, OpenBLAS runs on one
/// thread and the ops that call sgemm (`linear`, `conv1d`, `matmul`, `packedSelfAttention`) split
/// their GEMMs across our pool, so one set of threads does all the work.
public enum GEMMThreading {
    /// Scopes open in the process and the OpenBLAS thread count to restore when the last one ends.
    private static let scopes = Mutex<(open: Int, savedBLASThreads: Int32)>((0, 1))
    /// Per-thread nesting depth of `withPoolThreadedGEMMs` (stored as the pointer's bit pattern):
    /// only the thread inside a scope splits its GEMMs, so another thread's GEMMs (T3 beside the
    /// flow in streaming, or a concurrent test) never fan out into our pool unasked.
    private static let depthKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    private static var depth: Int {
        get { Int(bitPattern: pthread_getspecific(depthKey)) }
        set { pthread_setspecific(depthKey, UnsafeRawPointer(bitPattern: newValue)) }
    }

    /// Whether GEMMs called on this thread are split across our pool (OpenBLAS single-threaded).
    public static var poolSplitsGEMMs: Bool { depth > 0 }

    /// Runs `body` with OpenBLAS single-threaded and the GEMMs this thread calls split across
    /// `ThreadPool.shared`; OpenBLAS's thread count is restored when the last open scope (on any
    /// thread) ends. Nestable. While a scope is open, other threads' GEMMs run on one OpenBLAS
    /// thread, unsplit.
    public static func withPoolThreadedGEMMs<R>(_ body: () throws -> R) rethrows -> R {
        let outermost = depth == 0
        if outermost {
            scopes.withLock { state in
                if state.open == 0 {
                    state.savedBLASThreads = openblas_get_num_threads()
                    openblas_set_num_threads(1)
                }
                state.open += 1
            }
        }
        depth += 1
        defer {
            depth -= 1
            if outermost {
                scopes.withLock { state in
                    state.open -= 1
                    if state.open == 0 { openblas_set_num_threads(state.savedBLASThreads) }
                }
            }
        }
        return try body()
    }

    /// Below this many multiply-adds a GEMM is not split (a pool hand-off costs a few µs).
    static let splitThreshold = 1 << 20

    /// Row-major `C ← alpha·op(A)·op(B) + beta·C` (op = transpose when the flag is set), `cblas_sgemm`'s
    /// contract. In pool mode the larger of C's two dimensions is split into one band per pool
    /// thread (multiples of 16, the sgemm kernels' register block), each band a single-threaded
    /// sgemm; otherwise one call that OpenBLAS threads itself.
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        func call(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        guard m > 0, n > 0 else { return }
        let threads = ThreadPool.shared.threadCount
        guard poolSplitsGEMMs, threads > 1, m * n * k >= splitThreshold, max(m, n) >= 32 else {
            call(m, n, a, b, c)
            return
        }
        let splitRows = m >= n
        let blocks = ((splitRows ? m : n) + 15) / 16
        ThreadPool.shared.parallelFor(blocks, minimumChunk: 1) { range in
            let start = range.lowerBound * 16
            let end = min(splitRows ? m : n, range.upperBound * 16)
            if splitRows {
                call(end - start, n, transposeA ? a + start : a + start * lda, b, c + start * ldc)
            } else {
                call(m, end - start, a, transposeB ? b + start * ldb : b + start, c + start)
            }
        }
    }
}
