import Testing
import TestSupport
@testable import ChatterTensor

/// Parity of the skinny GEMM (`gemv`, and `linear` with ≤ 8 rows) with torch `x @ w.float().T + b`
/// for f32 and bf16 weights, on every instruction-set variant this CPU runs; fixture `ops/gemv`.
/// Tolerance: max|err| / max|ref| ≤ 1e-5.
@Suite struct GEMVTests {
    static let tolerance: Float = 1e-5

    @Test func matchesTorchOnEveryISA() throws {
        let fixture = try Fixture("ops/gemv")
        print("GEMV variants on this CPU: \(KernelISA.available), default \(KernelISA.current)")
        for testCase in fixture.cases {
            let x = try fixture.tensor(testCase, "x"), weight = try fixture.tensor(testCase, "weight")
            #expect(weight.dtype == (testCase.string("dtype") == "bf16" ? .bf16 : .f32))
            let bias = fixture.has(testCase, "bias") ? try fixture.tensor(testCase, "bias") : nil
            let expected = try fixture.tensor(testCase, "output")
            expectParity(gemv(x, weight: weight, bias: bias), expected, tolerance: Self.tolerance, "\(testCase)")
            expectParity(linear(x, weight: weight, bias: bias), expected, tolerance: Self.tolerance, "\(testCase) linear")
            for isa in KernelISA.available {
                let output = Tensor(zeros: expected.shape)
                gemv(x, weight: weight, bias: bias, into: output, isa: isa)
                expectParity(output, expected, tolerance: Self.tolerance, "\(testCase) \(isa)")
            }
        }
    }

    /// Sizes large enough to split across threads and to run the prefetching main loop for long,
    /// checked against a double-precision reference on every variant (11 rows: one pass per 8).
    @Test(arguments: [1, 2, 3, 4, 5, 8, 11])
    func largeShapesAgreeAcrossISAs(rows: Int) {
        var generator = SplitMix64(seed: UInt64(rows))
        let n = 1001, k = 1051  // k % 32 = 27: full lines, one 16-wide step and a padded tail
        let x = Tensor(shape: [rows, k], scalars: (0..<rows * k).map { _ in generator.nextFloat() })
        let w32 = Tensor(shape: [n, k], scalars: (0..<n * k).map { _ in generator.nextFloat() * 0.03 })
        let bias = Tensor(shape: [n], scalars: (0..<n).map { _ in generator.nextFloat() })
        for weight in [w32, w32.converted(to: .bf16)] {
            let xs = x.scalars(), ws = weight.scalars(), bs = bias.scalars()
            var reference = [Float](repeating: 0, count: rows * n)
            for i in 0..<rows {
                for j in 0..<n {
                    var sum = Double(bs[j])
                    for t in 0..<k { sum += Double(xs[i * k + t]) * Double(ws[j * k + t]) }
                    reference[i * n + j] = Float(sum)
                }
            }
            for isa in KernelISA.available {
                let output = Tensor(zeros: [rows, n])
                gemv(x, weight: weight, bias: bias, into: output, isa: isa)
                expectParity(output.scalars(), reference, tolerance: Self.tolerance, "\(rows)x\(k)x\(n) \(weight.dtype) \(isa)")
            }
        }
    }

    @Test func moreThanEightRowsTakeOnePassPerEight() {
        var generator = SplitMix64(seed: 99)
        let x = Tensor(shape: [19, 70], scalars: (0..<19 * 70).map { _ in generator.nextFloat() })
        let weight = Tensor(shape: [33, 70], scalars: (0..<33 * 70).map { _ in generator.nextFloat() })
        expectParity(gemv(x, weight: weight), matmul(x, weight, transposeB: true), tolerance: Self.tolerance, "19 rows")
        let bf16 = weight.converted(to: .bf16)
        for isa in KernelISA.available {
            let output = Tensor(zeros: [19, 33])
            gemv(x, weight: bf16, bias: nil, into: output, isa: isa)
            expectParity(output, matmul(x, bf16.converted(to: .f32), transposeB: true), tolerance: Self.tolerance, "19 rows bf16 \(isa)")
        }
    }

    @Test func leadingAxesAreRows() {
        let x = Tensor(shape: [2, 1, 3], scalars: [1, 2, 3, 4, 5, 6])
        let weight = Tensor(shape: [2, 3], scalars: [1, 0, 0, 0, 1, 1])
        let y = gemv(x, weight: weight, bias: Tensor(shape: [2], scalars: [10, 20]))
        #expect(y.shape == [2, 1, 2])
        #expect(y.scalars() == [11, 25, 14, 31])
    }
}

/// q8_0 weights have no torch counterpart; the reference is the f32 product with the dequantised
/// weights (exact: scale · int8 in f32), so the tolerance is the same 1e-5.
@Suite struct GEMVQ8Tests {
    @Test(arguments: [(1, 32, 5), (2, 64, 13), (3, 1024, 257), (4, 96, 7), (8, 2048, 37), (11, 160, 9)])
    func matchesDequantisedProduct(rows: Int, k: Int, n: Int) {
        var generator = SplitMix64(seed: UInt64(rows * k + n))
        let x = Tensor(shape: [rows, k], scalars: (0..<rows * k).map { _ in generator.nextFloat() })
        let weight = Tensor(shape: [n, k], scalars: (0..<n * k).map { _ in generator.nextFloat() * 0.05 }).converted(to: .q8_0)
        let bias = Tensor(shape: [n], scalars: (0..<n).map { _ in generator.nextFloat() })
        let dequantised = Tensor(shape: [n, k], scalars: weight.scalars())
        let expected = matmul(x, dequantised, transposeB: true).scalars().enumerated().map { $0.element + bias.scalars()[$0.offset % n] }
        for isa in KernelISA.available {
            let output = Tensor(zeros: [rows, n])
            gemv(x, weight: weight, bias: bias, into: output, isa: isa)
            expectParity(output.scalars(), expected, tolerance: GEMVTests.tolerance, "q8_0 \(rows)x\(k)x\(n) \(isa)")
        }
        expectParity(linear(x, weight: weight, bias: bias).scalars(), expected, tolerance: GEMVTests.tolerance, "q8_0 linear \(rows)x\(k)x\(n)")
    }
}
