import Testing
import TestSupport
@testable import ChatterTensor

/// Whether this CPU (and CHATTERSTREAM_ISA) allows the avx512_bf16 GEMM; its tests are skipped otherwise.
private let hasBF16 = KernelISA.current >= .avx512bf16
private let skipReason: Comment = "needs avx512_bf16 (CPUID leaf 7 subleaf 1, EAX bit 5): absent on this CPU or capped by CHATTERSTREAM_ISA"

/// The avx512_bf16 GEMM (`linearBF16Native`, behind `linear` with bf16 weights and more than 8 rows)
/// against a double-precision product of the operands it actually multiplies: the activations
/// rounded to bf16 (round to nearest even, `BFloat16(_:)`, what `vcvtne2ps2bf16` does) and the bf16
/// weights. Products of two bf16 are exact in f32, so the only error left is the f32 accumulation
/// over K ≤ ~1100 terms: the bound is the GEMV tests' 1e-5 of max|ref|.
///
/// Shapes are chosen for the kernel's edges: M = 1, 7, 9, 41, 78, 417 (partial strips of 8 rows,
/// row blocks when few column tiles), N not a multiple of 16 or 32 (masked column tails), K odd and
/// not a multiple of 32 (a zero-padded last pair, word-by-word tails of the weight packing, K blocks
/// of unequal length).
@Suite struct GEMMBF16Tests {
    static let tolerance: Float = 1e-5

    /// Random operands: x [m, k] f32, w [n, k] bf16, bias [n].
    static func operands(m: Int, n: Int, k: Int, seed: UInt64) -> (x: Tensor, w: Tensor, bias: Tensor) {
        var generator = SplitMix64(seed: seed)
        let x = Tensor(shape: [m, k], scalars: (0..<m * k).map { _ in generator.nextFloat() * 2 - 1 })
        let w = Tensor(shape: [n, k], scalars: (0..<n * k).map { _ in (generator.nextFloat() * 2 - 1) * 0.05 }).converted(to: .bf16)
        let bias = Tensor(shape: [n], scalars: (0..<n).map { _ in generator.nextFloat() })
        return (x, w, bias)
    }

    /// Σ_t x[i, t] · w[j, t] (+ bias[j]) in Double, x and w given as the values to multiply.
    static func reference(_ x: [Float], _ w: [Float], bias: [Float]?, m: Int, n: Int, k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = Double(bias?[j] ?? 0)
                        for t in 0..<k { sum += Double(xp[i * k + t]) * Double(wp[j * k + t]) }
                        out[i * n + j] = Float(sum)
                    }
                }
            }
        }
        return out
    }

    static func roundedToBF16(_ x: Tensor) -> [Float] { x.scalars().map { BFloat16($0).floatValue } }

    @Test(.enabled(if: hasBF16, skipReason), arguments: [1, 7, 9, 41, 78, 417])
    func matchesDoublePrecisionProductOfBF16Operands(rows: Int) {
        for (n, k) in [(37, 71), (100, 333), (300, 1051)] {
            let (x, w, bias) = Self.operands(m: rows, n: n, k: k, seed: UInt64(rows * 1_000_003 + n * 1009 + k))
            let product = Self.reference(Self.roundedToBF16(x), w.scalars(), bias: nil, m: rows, n: n, k: k)
            let biasValues = bias.scalars()
            for withBias in [false, true] {
                let expected = withBias ? product.enumerated().map { $0.element + biasValues[$0.offset % n] } : product
                let output = Tensor(zeros: [rows, n])
                linearBF16Native(x, weight: w, bias: withBias ? bias : nil, into: output)
                expectParity(output.scalars(), expected, tolerance: Self.tolerance, "bf16 GEMM \(rows)x\(k)x\(n)\(withBias ? " +bias" : "")")
                if rows > gemvMaxRows {  // and through the public entry
                    expectParity(linear(x, weight: w, bias: withBias ? bias : nil).scalars(), expected, tolerance: Self.tolerance,
                                 "linear bf16 \(rows)x\(k)x\(n)\(withBias ? " +bias" : "")")
                }
            }
        }
    }

    /// More rows than one M block (512 rows at K blocks of 512) and K split into 1024-aligned blocks,
    /// split across threads by columns; and `accumulate`, which adds to what C holds.
    @Test(.enabled(if: hasBF16, skipReason))
    func largeRowCountsAndAccumulation() {
        let m = 700, n = 70, k = 1024
        let (x, w, bias) = Self.operands(m: m, n: n, k: k, seed: 0xB16B)
        let expected = Self.reference(Self.roundedToBF16(x), w.scalars(), bias: bias.scalars(), m: m, n: n, k: k)
        let output = Tensor(zeros: [m, n])
        linearBF16Native(x, weight: w, bias: bias, into: output)
        expectParity(output.scalars(), expected, tolerance: Self.tolerance, "bf16 GEMM \(m)x\(k)x\(n) +bias, two M blocks")
        let start = Tensor(shape: [m, n], scalars: (0..<m * n).map { Float($0 % 13) - 6 })
        let accumulated = start.copy()
        linearBF16Native(x, weight: w, bias: bias, into: accumulated, accumulate: true)
        let startValues = start.scalars()
        expectParity(accumulated.scalars(), expected.enumerated().map { $0.element + startValues[$0.offset] },
                     tolerance: Self.tolerance, "bf16 GEMM accumulate")
    }

    /// K = 0 leaves the bias (or zero); a single column and a single k.
    @Test(.enabled(if: hasBF16, skipReason))
    func degenerateShapes() {
        let bias = Tensor(shape: [5], scalars: [1, 2, 3, 4, 5])
        let empty = Tensor(zeros: [9, 5])
        linearBF16Native(Tensor(zeros: [9, 0]), weight: Tensor(zeros: [5, 0], dtype: .bf16), bias: bias, into: empty)
        #expect(empty.scalars() == Array(repeating: [1, 2, 3, 4, 5] as [Float], count: 9).flatMap { $0 })
        let (x, w, _) = Self.operands(m: 11, n: 1, k: 1, seed: 5)
        let output = Tensor(zeros: [11, 1])
        linearBF16Native(x, weight: w, bias: nil, into: output)
        expectParity(output.scalars(), Self.reference(Self.roundedToBF16(x), w.scalars(), bias: nil, m: 11, n: 1, k: 1),
                     tolerance: Self.tolerance, "bf16 GEMM 11x1x1")
    }

    /// The fallback (bf16 weights widened to f32, sgemm with the f32 activations, unrounded) still
    /// runs when the kernels are capped below avx512_bf16, as on CPUs without it: exact widening, so
    /// the double-precision product of the f32 activations and the bf16 weights within 1e-5.
    @Test(arguments: [9, 78])
    func fallbackWithISALowered(rows: Int) {
        let n = 67, k = 333
        let (x, w, bias) = Self.operands(m: rows, n: n, k: k, seed: UInt64(rows))
        let expected = Self.reference(x.scalars(), w.scalars(), bias: bias.scalars(), m: rows, n: n, k: k)
        for isa in KernelISA.available where isa < .avx512bf16 {
            expectParity(linear(x, weight: w, bias: bias, isa: isa).scalars(), expected, tolerance: Self.tolerance,
                         "linear bf16 \(rows)x\(k)x\(n), widen + sgemm at \(isa)")
        }
        // Capped at avx512, a bf16-capable CPU must not round the activations: the fallback agrees
        // with the f32 reference far better than bf16 rounding (up to 2⁻⁸ relative per element) would.
        let capped = ParityError(linear(x, weight: w, bias: bias, isa: .avx512).scalars(), expected)
        #expect(capped.relative < 1e-5, "capped at avx512: \(capped)")
    }
}
