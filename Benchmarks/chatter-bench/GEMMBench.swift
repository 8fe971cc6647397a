import ChatterTensor
import Foundation

/// sgemm throughput (through `matmul`, OpenBLAS) at S3Gen-like shapes: T frames × channels, with
/// weights in PyTorch [out, in] layout (`transposeB`).
struct GEMMBench {
    let repetitions: Int

    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (200, 256, 256), (200, 512, 512), (500, 512, 2048), (500, 2048, 512),
        (1000, 256, 1024), (1000, 1024, 1024), (1000, 512, 1536), (1000, 1024, 256),
    ]

    func run() -> [String: Any] {
        var cases: [[String: Any]] = []
        for shape in Self.shapes {
            let a = Tensor(shape: [shape.m, shape.k], scalars: (0..<shape.m * shape.k).map { Float($0 % 11) * 0.01 })
            let w = Tensor(shape: [shape.n, shape.k], scalars: (0..<shape.n * shape.k).map { Float($0 % 5) * 0.02 })
            _ = matmul(a, w, transposeB: true)
            var times: [Double] = []
            for _ in 0..<repetitions {
                let start = now()
                _ = matmul(a, w, transposeB: true)
                times.append(Double(now() - start) / 1e9)
            }
            let seconds = median(times)
            let gflops = 2 * Double(shape.m * shape.k * shape.n) / seconds / 1e9
            note("gemm \(shape.m)x\(shape.k)x\(shape.n): \(rounded(seconds * 1e3, 3)) ms = \(rounded(gflops, 1)) GFLOP/s")
            cases.append(["m": shape.m, "k": shape.k, "n": shape.n, "ms": rounded(seconds * 1e3, 4), "gflop_s": rounded(gflops, 2)])
        }
        return ["method": "matmul(a [M,K], w [N,K], transposeB: true) → cblas_sgemm on one OpenBLAS thread per band, bands split across our pool (GEMMThreading), median of \(repetitions), output allocation included", "cases": cases]
    }
}
