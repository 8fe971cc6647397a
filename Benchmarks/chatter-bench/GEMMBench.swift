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
        return ["method": "matmul(a [M,K], w [N,K], transposeB: true) → cblas_sgemm on one OpenBLAS thread per band, bands split across our pool (GEMMThreading), median of \(repetitions), output allocation included", "cases": cases,
                "bf16": runBF16()]
    }

    /// T3 prefill shapes with bf16 weights: CFG prefill of the original T3 (78 positions × 2 rows)
    /// and a Turbo prefill (417 positions); N × K of the Llama q/o (1024 × 1024), fused q|k|v or
    /// GPT-2 c_attn-like (3072 × 1024), gate|up-like (4096 × 1024) and down (1024 × 4096) layers.
    static let bf16Shapes: [(m: Int, n: Int, k: Int)] = [156, 417].flatMap { m in
        [(1024, 1024), (3072, 1024), (4096, 1024), (1024, 4096)].map { (m, $0.0, $0.1) }
    }

    /// `linear` three ways per shape: the native bf16 GEMM (avx512_bf16, activations rounded to
    /// bf16), the widen + sgemm path it replaces (bf16 weights widened to f32 4 MiB at a time, the
    /// kernels capped at avx512), and plain f32 weights through OpenBLAS sgemm.
    func runBF16() -> [String: Any] {
        let native = KernelISA.current >= .avx512bf16
        var cases: [[String: Any]] = []
        for shape in Self.bf16Shapes {
            let a = Tensor(shape: [shape.m, shape.k], scalars: (0..<shape.m * shape.k).map { Float($0 % 11) * 0.01 - 0.05 })
            let w32 = Tensor(shape: [shape.n, shape.k], scalars: (0..<shape.n * shape.k).map { Float($0 % 5) * 0.02 - 0.04 })
            let w16 = w32.converted(to: .bf16)
            let flops = 2 * Double(shape.m * shape.n * shape.k)
            func time(_ body: () -> Tensor) -> Double {
                _ = body()
                var times: [Double] = []
                for _ in 0..<repetitions {
                    let start = now()
                    _ = body()
                    times.append(Double(now() - start) / 1e9)
                }
                return median(times)
            }
            var entry: [String: Any] = ["m": shape.m, "n": shape.n, "k": shape.k]
            var line = "gemm bf16 \(shape.m)x\(shape.k)x\(shape.n):"
            let variants: [(String, () -> Tensor)] = (native ? [("native_bf16", { linear(a, weight: w16, isa: .avx512bf16) })] : []) + [
                ("widen_sgemm", { linear(a, weight: w16, isa: .avx512) }),
                ("openblas_f32", { linear(a, weight: w32) }),
            ]
            for (name, body) in variants {
                let seconds = time(body)
                entry[name + "_ms"] = rounded(seconds * 1e3, 4)
                entry[name + "_gflop_s"] = rounded(flops / seconds / 1e9, 2)
                line += " \(name) \(rounded(seconds * 1e3, 3)) ms = \(rounded(flops / seconds / 1e9, 1)) GFLOP/s;"
            }
            note(line)
            cases.append(entry)
        }
        return ["method": "linear(a [M,K] f32, w [N,K]) without bias: native_bf16 = avx512_bf16 GEMM (vdpbf16ps, activations rounded to bf16, f32 sums; \(native ? "run" : "absent on this CPU")), widen_sgemm = bf16 weights widened to f32 in 4 MiB blocks + OpenBLAS sgemm (CHATTERSTREAM ISA capped at avx512), openblas_f32 = f32 weights through OpenBLAS sgemm; median of \(repetitions), output allocation included",
                "kernel_isa": KernelISA.current.description, "cases": cases]
    }
}
