import COpenBLAS
import ChatterTensor
import Foundation

/// Weight-read bandwidth of the decode-step products (T3 shapes, M = 1 and the two CFG rows), ours
/// beside OpenBLAS, on weights that are not in any cache: each call reads a different copy, and the
/// copies together are far larger than the L3.
struct GEMVBench {
    let footprintMiB: Int
    let repetitions: Int

    static let shapes = [(n: 4096, k: 1024), (n: 1024, k: 4096), (n: 8194, k: 1024)]

    func run() -> [String: Any] {
        var cases: [[String: Any]] = []
        for shape in Self.shapes {
            for dtype in [DType.f32, .bf16] {
                let copies = WeightCopies(n: shape.n, k: shape.k, dtype: dtype, footprintMiB: footprintMiB)
                for rows in [1, 2] {
                    let x = Tensor(shape: [rows, shape.k], scalars: (0..<rows * shape.k).map { Float($0 % 7) * 0.1 - 0.3 })
                    let y = Tensor(zeros: [rows, shape.n])
                    var entry: [String: Any] = [
                        "m": rows, "n": shape.n, "k": shape.k, "weight_dtype": dtype.rawValue,
                        "weight_bytes": copies.bytesPerCopy, "distinct_copies": copies.tensors.count,
                    ]
                    var contenders: [(Int) -> Void] = [{ i in gemv(x, weight: copies.tensors[i], into: y) }]
                    if dtype == .f32 {
                        contenders.append { i in
                            Self.openBLAS(x: x, weight: copies.tensors[i], y: y, rows: rows, n: shape.n, k: shape.k)
                        }
                    }
                    let times = measure(copies: copies.tensors.count, contenders)
                    let ours = times[0]
                    entry["ours_us"] = rounded(ours * 1e6, 2)
                    entry["ours_gb_s"] = rounded(Double(copies.bytesPerCopy) / ours / 1e9, 2)
                    var line = "gemv m=\(rows) \(shape.n)x\(shape.k) \(dtype): ours \(rounded(ours * 1e6, 1)) µs = \(entry["ours_gb_s"]!) GB/s"
                    if dtype == .f32 {
                        let blas = times[1]
                        entry["openblas_routine"] = rows == 1 ? "cblas_sgemv" : "cblas_sgemm"
                        entry["openblas_us"] = rounded(blas * 1e6, 2)
                        entry["openblas_gb_s"] = rounded(Double(copies.bytesPerCopy) / blas / 1e9, 2)
                        entry["speedup_vs_openblas"] = rounded(blas / ours, 2)
                        line += ", OpenBLAS \(rounded(blas * 1e6, 1)) µs = \(entry["openblas_gb_s"]!) GB/s"
                    }
                    note(line)
                    cases.append(entry)
                }
            }
        }
        addBF16Speedups(&cases)
        return [
            "method": "median over \(repetitions) sweeps (ours and OpenBLAS alternating) through ≥ \(footprintMiB) MiB of distinct weight copies; weight GB/s = weight bytes / time per call",
            "cases": cases,
        ]
    }

    /// Seconds per call of each contender: the median over repetitions of a sweep through every copy.
    /// Contenders take turns within each repetition so that both see the same machine (this host is
    /// shared, and its load drifts over seconds).
    private func measure(copies: Int, _ contenders: [(Int) -> Void]) -> [Double] {
        var perCall = [[Double]](repeating: [], count: contenders.count)
        for repetition in -1..<repetitions {  // repetition -1 warms up: page faults, thread start
            for (index, body) in contenders.enumerated() {
                // OpenBLAS workers spin for a while after each call; let them sleep before timing.
                usleep(150_000)
                let start = now()
                for i in 0..<copies { body(i) }
                if repetition >= 0 { perCall[index].append(Double(now() - start) / 1e9 / Double(copies)) }
            }
        }
        return perCall.map(median)
    }

    private static func openBLAS(x: Tensor, weight: Tensor, y: Tensor, rows: Int, n: Int, k: Int) {
        x.withUnsafeFloats { xp in
            weight.withUnsafeFloats { wp in
                y.withUnsafeMutableFloats { yp in
                    if rows == 1 {
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), 1, wp.baseAddress!, Int32(k),
                                    xp.baseAddress!, 1, 0, yp.baseAddress!, 1)
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(k), 1,
                                    xp.baseAddress!, Int32(k), wp.baseAddress!, Int32(k), 0, yp.baseAddress!, Int32(n))
                    }
                }
            }
        }
    }

    /// bf16 over f32 time ratio of our kernel at each shape and row count.
    private func addBF16Speedups(_ cases: inout [[String: Any]]) {
        for index in cases.indices where cases[index]["weight_dtype"] as? String == "BF16" {
            let key = { (c: [String: Any]) in "\(c["m"]!) \(c["n"]!) \(c["k"]!)" }
            if let f32 = cases.first(where: { $0["weight_dtype"] as? String == "F32" && key($0) == key(cases[index]) }),
               let f32Time = f32["ours_us"] as? Double, let bf16Time = cases[index]["ours_us"] as? Double {
                cases[index]["speedup_vs_ours_f32"] = rounded(f32Time / bf16Time, 2)
            }
        }
    }
}

/// Enough distinct copies of one weight matrix to cover the footprint (at least two).
struct WeightCopies {
    let tensors: [Tensor]
    let bytesPerCopy: Int

    init(n: Int, k: Int, dtype: DType, footprintMiB: Int) {
        bytesPerCopy = n * k * dtype.elementBytes!
        let count = max(2, (footprintMiB << 20 + bytesPerCopy - 1) / bytesPerCopy)
        tensors = (0..<count).map { copy in
            let tensor = Tensor(zeros: [n, k], dtype: dtype)
            let elements = n * k
            // Small varied values; writing every page also makes the memory resident.
            if dtype == .f32 {
                let p = tensor.storage.baseAddress.bindMemory(to: Float.self, capacity: elements)
                for i in 0..<elements { p[i] = Float((i &+ copy) % 13) * 0.01 - 0.06 }
            } else {
                let p = tensor.storage.baseAddress.bindMemory(to: UInt16.self, capacity: elements)
                for i in 0..<elements { p[i] = BFloat16(Float((i &+ copy) % 13) * 0.01 - 0.06).bitPattern }
            }
            return tensor
        }
    }
}
