import COpenBLAS

/// How GEMMs are threaded in this process: OpenBLAS runs on one thread, and `sgemm` splits each
/// large GEMM into one band of output rows or columns per `ThreadPool.shared` thread.
///
/// Why one threading layer: two thread pools on two cores fight. OpenBLAS's workers spin and
/// yield for ~100 ms after each call while our pool runs the norms, activations and softmaxes in
/// between (measured ~15 % of the CFM estimator in `sched_yield`).
///
/// Why fixed for the whole process rather than switched around the hot model: OpenBLAS rounds
/// differently threaded and single-threaded (measured: 1–74 % of the outputs differ in the last
/// bits at S3Gen shapes), so changing its thread count around one model would make the GEMMs
/// other threads run meanwhile (T3 beside S3Gen when streaming) depend on timing. Here a GEMM's
/// split depends only on its shape and the pool size, so every result is reproducible.
public enum GEMMThreading {
    /// Puts OpenBLAS on one thread (again, if something raised it). Cheap: a read of a global.
    static func useSingleThreadedBLAS() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    /// Below this many multiply-adds a GEMM is not split (a pool hand-off costs a few µs).
    static let splitThreshold = 1 << 20

    /// Row-major `C ← alpha·op(A)·op(B) + beta·C` (op = transpose when the flag is set),
    /// `cblas_sgemm`'s contract. The larger of C's two dimensions is split into one band per pool
    /// thread (multiples of 16, the sgemm kernels' register block), each band a single-threaded
    /// sgemm; small GEMMs are one call on the calling thread.
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        func call(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        guard m > 0, n > 0 else { return }
        useSingleThreadedBLAS()
        guard ThreadPool.shared.threadCount > 1, m * n * k >= splitThreshold, max(m, n) >= 32 else {
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
