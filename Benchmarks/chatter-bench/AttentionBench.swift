import ChatterTensor
import Foundation

/// The S3Gen attention ops, fused (flash-style) against unfused, per call at the model's shapes:
/// the CFM decoder's `packedSelfAttention` (8 heads of 64 over T frames, batch 1 for meanflow and 2
/// for CFG) in f32 and, on avx512_bf16, with bf16 products; the flow encoder's
/// `relativePositionSelfAttention` (8 heads of 64 over n tokens or frames: a 10 s prompt is 250
/// tokens, the 4 upsampled layers see twice as many). Within a repetition the two algorithms run
/// back to back, the order alternating per repetition, so drifts of a shared machine reach both.
struct AttentionBench {
    let repetitions: Int

    func run() -> [String: Any] {
        let native = KernelISA.current >= .avx512bf16
        var cases: [[String: Any]] = []
        let (heads, dim) = (8, 64)
        for batch in [1, 2] {
            for length in [300, 800, 1200, 2000] {
                let inner = heads * dim
                var rng = SplitMix64(seed: UInt64(batch * 10_000 + length))
                let qkv = Tensor(shape: [batch, length, 3 * inner],
                                 scalars: (0..<(batch * length * 3 * inner)).map { _ in Float.random(in: -1..<1, using: &rng) })
                let flops = 4.0 * Double(batch * heads * length * length * dim)
                for products in native ? [DType.f32, .bf16] : [.f32] {
                    let times = compare { packedSelfAttention(qkv, heads: heads, products: products, algorithm: $0) }
                    cases.append(entry("cfm packed \(products)", ["batch": batch, "length": length, "heads": heads, "dim": dim],
                                       times, flops: flops))
                }
            }
        }
        for n in [250, 300, 600, 800] {
            let width = heads * dim
            var rng = SplitMix64(seed: UInt64(n))
            func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) } }
            let (q, k, v) = (Tensor(shape: [n, width], scalars: random(n * width)), Tensor(shape: [n, width], scalars: random(n * width)),
                             Tensor(shape: [n, width], scalars: random(n * width)))
            let p = Tensor(shape: [2 * n - 1, width], scalars: random((2 * n - 1) * width))
            let (u, bv) = (Tensor(shape: [heads, dim], scalars: random(width)), Tensor(shape: [heads, dim], scalars: random(width)))
            // The unfused op's products: AC n², BD n·(2n−1), P·V n² per head.
            let flops = 2.0 * Double(heads * dim) * Double(n * n + n * (2 * n - 1) + n * n)
            let times = compare {
                relativePositionSelfAttention(query: q, key: k, value: v, positions: p, biasU: u, biasV: bv, heads: heads, algorithm: $0)
            }
            cases.append(entry("encoder relative-position f32", ["n": n, "heads": heads, "dim": dim], times, flops: flops))
        }
        return ["method": "per call, output allocation included; median of \(repetitions) after one warm-up of each, unfused and fused adjacent within each repetition (order alternating), paired speed-up = median of the per-repetition ratios; GFLOP/s count the unfused op's products (CFM 4·B·H·T²·D; encoder 2·H·D·(n² + n(2n−1) + n²))",
                "isa": "\(KernelISA.current)", "threads": ThreadPool.shared.threadCount, "cases": cases]
    }

    struct Comparison {
        /// Median seconds of each algorithm.
        var unfused: Double, fused: Double
        /// Median over repetitions of unfused ÷ fused, each ratio from two adjacent runs: steadier than
        /// the ratio of medians when the machine's load drifts during the case.
        var pairedSpeedup: Double
    }

    private func compare(_ op: (AttentionAlgorithm) -> Tensor) -> Comparison {
        _ = op(.unfused)
        _ = op(.fused)
        var times: [AttentionAlgorithm: [Double]] = [.unfused: [], .fused: []]
        for repetition in 0..<repetitions {
            for algorithm in repetition % 2 == 0 ? [AttentionAlgorithm.unfused, .fused] : [.fused, .unfused] {
                let start = now()
                _ = op(algorithm)
                times[algorithm]!.append(Double(now() - start) / 1e9)
            }
        }
        let ratios = zip(times[.unfused]!, times[.fused]!).map { $0 / $1 }
        return Comparison(unfused: median(times[.unfused]!), fused: median(times[.fused]!), pairedSpeedup: median(ratios))
    }

    private func entry(_ name: String, _ shape: [String: Int], _ times: Comparison, flops: Double) -> [String: Any] {
        let (unfused, fused) = (times.unfused, times.fused)
        let shapeText = shape.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        note("attention \(name) (\(shapeText)): unfused \(rounded(unfused * 1e3, 3)) ms, fused \(rounded(fused * 1e3, 3)) ms (\(rounded(unfused / fused, 2))×; paired \(rounded(times.pairedSpeedup, 2))×)")
        var result: [String: Any] = ["name": name, "unfused_ms": rounded(unfused * 1e3, 3), "fused_ms": rounded(fused * 1e3, 3),
                                     "fused_speedup": rounded(unfused / fused, 3), "fused_paired_speedup": rounded(times.pairedSpeedup, 3),
                                     "unfused_gflop_s": rounded(flops / unfused / 1e9, 1), "fused_gflop_s": rounded(flops / fused / 1e9, 1)]
        for (key, value) in shape { result[key] = value }
        return result
    }
}
