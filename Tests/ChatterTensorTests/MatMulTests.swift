import Testing
import TestSupport
@testable import ChatterTensor

/// Parity of `matmul` and `linear` (sgemm path) with torch; fixture `ops/matmul`.
/// Tolerance: max|err| / max|ref| ≤ 1e-5 (f32 accumulation, different summation order).
@Suite struct MatMulTests {
    static let tolerance: Float = 1e-5

    @Test func matmulMatchesTorch() throws {
        let fixture = try Fixture("ops/matmul")
        for testCase in fixture.cases where testCase.string("kind") == "matmul" {
            let a = try fixture.tensor(testCase, "a"), b = try fixture.tensor(testCase, "b")
            let expected = try fixture.tensor(testCase, "output")
            let ta = testCase.bool("transpose_a"), tb = testCase.bool("transpose_b")
            expectParity(matmul(a, b, transposeA: ta, transposeB: tb), expected, tolerance: Self.tolerance,
                         "\(testCase) flags")
            // The same product from transposed views instead of flags.
            let va = ta ? a.transposed() : a, vb = tb ? b.transposed() : b
            expectParity(matmul(va, vb), expected, tolerance: Self.tolerance, "\(testCase) views")
        }
    }

    @Test func transposedViewsReachBLASWithoutCopy() {
        let a = Tensor(shape: [3, 4], scalars: (0..<12).map(Float.init))
        let view = BLASMatrix(a.transposed())
        #expect(view.transposed && view.leadingDimension == 4)
        #expect(view.source.storage === a.storage)
        let plain = BLASMatrix(a)
        #expect(!plain.transposed && plain.leadingDimension == 4 && plain.source.storage === a.storage)
        // A row slice keeps its parent's leading dimension.
        let sliced = BLASMatrix(Tensor(zeros: [5, 6]).slice(1, 1..<4))
        #expect(!sliced.transposed && sliced.leadingDimension == 6)
    }

    @Test func stridedBatchesMatchContiguousCopies() {
        var generator = SplitMix64(seed: 7)
        let base = Tensor(shape: [4, 5, 6], scalars: (0..<120).map { _ in generator.nextFloat() })
        let weight = Tensor(shape: [6, 3], scalars: (0..<18).map { _ in generator.nextFloat() })
        // Batch axis moved inside: strided, but each matrix is still BLAS-compatible (no fold, no copy).
        let view = base.permuted([1, 0, 2])
        expectParity(matmul(view, weight), matmul(view.contiguous(), weight), tolerance: 0, "strided \(view.strides)")
        let odd = base.permuted([2, 1, 0])  // [6, 5, 4], no unit stride in the last two axes
        let other = Tensor(shape: [6, 4, 2], scalars: (0..<48).map { _ in generator.nextFloat() })
        expectParity(matmul(odd, other), matmul(odd.contiguous(), other), tolerance: 0, "copied operand")
    }

    @Test func matrixTimesBatchRepeatsTheMatrix() {
        var generator = SplitMix64(seed: 11)
        let a = Tensor(shape: [5, 6], scalars: (0..<30).map { _ in generator.nextFloat() })
        let b = Tensor(shape: [3, 6, 4], scalars: (0..<72).map { _ in generator.nextFloat() })
        let product = matmul(a, b)
        #expect(product.shape == [3, 5, 4])
        for batch in 0..<3 {
            let expected = matmul(a, b.slice(0, batch..<(batch + 1)).reshaped([6, 4]))
            expectParity(product.slice(0, batch..<(batch + 1)).reshaped([5, 4]), expected, tolerance: 0, "batch \(batch)")
        }
    }

    /// A bf16 weight larger than one widening block (4 MiB of f32) is multiplied block by block
    /// into the right output columns, bias included (the widen + sgemm path, forced by capping the
    /// kernels at avx512). The default path (the avx512_bf16 GEMM where the CPU has it) rounds the
    /// activations to bf16 first, so it is compared with the f32 product of the rounded activations:
    /// the same operands, only the f32 summation order differs (1e-5 of max|ref|, as MatMulTests).
    @Test func bf16LinearAcrossWideningBlocks() {
        var random = SplitMix64(seed: 0xB16)
        let out = 600, inFeatures = 4096, rows = 12  // blocks of 256 output features: 256 + 256 + 88
        let weight = Tensor(shape: [out, inFeatures], scalars: (0..<(out * inFeatures)).map { _ in random.nextFloat() }).converted(to: .bf16)
        let x = Tensor(shape: [rows, inFeatures], scalars: (0..<(rows * inFeatures)).map { _ in random.nextFloat() })
        let bias = Tensor(shape: [out], scalars: (0..<out).map { _ in random.nextFloat() })
        let widened = weight.converted(to: .f32)
        expectParity(linear(x, weight: weight, bias: bias, isa: .avx512), linear(x, weight: widened, bias: bias), tolerance: 1e-6,
                     "bf16 linear, 3 blocks, bias")
        expectParity(linear(x, weight: weight, isa: .avx512), linear(x, weight: widened), tolerance: 1e-6, "bf16 linear, 3 blocks")
        let activations = KernelISA.current >= .avx512bf16 ? x.converted(to: .bf16).converted(to: .f32) : x
        expectParity(linear(x, weight: weight, bias: bias), linear(activations, weight: widened, bias: bias), tolerance: Self.tolerance,
                     "bf16 linear, default path (\(KernelISA.current)), bias")
    }

    @Test func linearWithManyRowsMatchesTorch() throws {
        let fixture = try Fixture("ops/matmul")
        for testCase in fixture.cases where testCase.string("kind") == "linear" {
            let x = try fixture.tensor(testCase, "x"), weight = try fixture.tensor(testCase, "weight")
            let bias = fixture.has(testCase, "bias") ? try fixture.tensor(testCase, "bias") : nil
            let expected = try fixture.tensor(testCase, "output")
            expectParity(linear(x, weight: weight, bias: bias), expected, tolerance: Self.tolerance, "\(testCase)")
            // Rows may arrive with extra leading axes.
            let shaped = linear(x.unsqueezed(0), weight: weight, bias: bias)
            expectParity(shaped.reshaped(expected.shape), expected, tolerance: Self.tolerance, "\(testCase) 3-D")
            // bf16 weights with many rows, capped below avx512_bf16: widened exactly, the same sgemm.
            let bf16 = weight.converted(to: .bf16)
            let widened = linear(x, weight: bf16.converted(to: .f32), bias: bias)
            expectParity(linear(x, weight: bf16, bias: bias, isa: .avx512), widened, tolerance: 0, "\(testCase) bf16 widened")
            // The default path: with avx512_bf16 and more than 8 rows, the bf16 GEMM rounds the
            // activations to bf16 (as torch's bf16 matmul). Against the f32 product of the rounded
            // activations only the summation order differs, hence 1e-5 rather than 0; against the
            // unrounded ones the error would be up to 2⁻⁸ of each product (bf16 unit roundoff), by design.
            let rows = x.shape.dropLast().reduce(1, *)
            let rounds = rows > gemvMaxRows && KernelISA.current >= .avx512bf16
            let activations = rounds ? x.converted(to: .bf16).converted(to: .f32) : x
            expectParity(linear(x, weight: bf16, bias: bias), linear(activations, weight: bf16.converted(to: .f32), bias: bias),
                         tolerance: rounds ? Self.tolerance : 0, "\(testCase) bf16 default path (\(KernelISA.current))")
        }
    }

    /// GEMMs split across the pool (one band per thread) against a double-precision product, for
    /// each way an op reaches sgemm: rows split (linear with bias, beta = 1), columns split (conv1d:
    /// few output channels, many frames), and a transposed A (matmul on views).
    @Test func splitGEMMsMatchADoublePrecisionProduct() {
        var random = SplitMix64(seed: 0x5917)
        func values(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in random.nextFloat() })
        }
        /// Σ_k a[i, k] · b[k, j] in Double, a [m, k] and b [k, n] row-major.
        func reference(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
            (0..<(m * n)).map { index in
                let (i, j) = (index / n, index % n)
                return Float((0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[$1 * n + j]) })
            }
        }
        #expect(ThreadPool.shared.threadCount == 1 || 200 * 130 * 128 >= GEMMThreading.splitThreshold)
        let x = values([2, 100, 128]), weight = values([130, 128]), bias = values([130])
        var expected = reference(x.scalars(), weight.transposed().contiguous().scalars(), m: 200, k: 128, n: 130)
        for i in expected.indices { expected[i] += bias.scalars()[i % 130] }
        expectParity(linear(x, weight: weight, bias: bias).scalars(), expected, tolerance: 1e-5, "linear, rows split")

        let signal = values([1, 64, 300]), kernel = values([40, 64, 3])
        let padded = concatenate([Tensor(zeros: [1, 64, 2]), signal], axis: 2).reshaped([64, 302])
        var columns = [Float](repeating: 0, count: 192 * 300)  // im2col of the causal input
        let paddedValues = padded.scalars()
        for c in 0..<64 { for k in 0..<3 { for t in 0..<300 { columns[(c * 3 + k) * 300 + t] = paddedValues[c * 302 + t + k] } } }
        expectParity(conv1d(signal, weight: kernel, paddingMode: .causal).scalars(),
                     reference(kernel.scalars(), columns, m: 40, k: 192, n: 300), tolerance: 1e-5, "conv1d, columns split")

        let a = values([128, 300]), b = values([64, 128])
        expectParity(matmul(a.transposed(), b.transposed()).scalars(),
                     reference(a.transposed().contiguous().scalars(), b.transposed().contiguous().scalars(), m: 300, k: 128, n: 64),
                     tolerance: 1e-5, "matmul of transposed views, rows split")
    }
}
