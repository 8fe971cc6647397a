import Testing
import TestSupport
import CChatterKernels
@testable import ChatterTensor

@Suite("Softmax")
struct SoftmaxTests {
    let fixture: Fixture
    init() throws { fixture = try Fixture("ops/softmax") }

    @Test func softmaxAndLogSoftmax() throws {
        for c in fixture.cases {
            let x = try fixture.tensor(c, "input"), axis = c.int("axis")
            expectParity(softmax(x, axis: axis), try fixture.tensor(c, "softmax"), tolerance: 1e-6, "\(c) softmax")
            // A −inf logit has log-probability −inf: check those positions exactly, the rest by parity.
            var actual = logSoftmax(x, axis: axis).scalars(), expected = try fixture.tensor(c, "log_softmax").scalars()
            for i in expected.indices where expected[i] == -.infinity {
                #expect(actual[i] == -.infinity)
                actual[i] = 0; expected[i] = 0
            }
            expectParity(actual, expected, tolerance: 1e-6, "\(c) log_softmax")
            if axis == -1 {
                let y = x.copy()
                softmaxInPlace(y)
                expectParity(y, try fixture.tensor(c, "softmax"), tolerance: 1e-6, "\(c) softmax in place")
            }
        }
    }

    @Test func rowsSumToOne() {
        let x = Tensor(shape: [3, 5], scalars: [1e30, -1e30, 0, 3, 4, -5, -5, -5, -5, -5, 88, 89, 90, 91, 92])
        let p = softmax(x).scalars()
        for r in 0..<3 { #expect(abs(p[r * 5..<r * 5 + 5].reduce(0, +) - 1) < 1e-6) }
    }

    /// The C softmax rows (one instance per ISA) equal the Swift `softmaxRow` bit for bit: lengths
    /// with and without a partial 16-lane tail, large logits (exp clamping), a −inf entry, a NaN row.
    @Test func cRowsAreBitIdenticalToTheSwiftRowOnEveryISA() {
        var random = SplitMix64(seed: 0x50F7)
        for length in [600, 37, 16, 5] {
            let count = 6
            var logits = (0..<(count * length)).map { _ in 30 * random.nextFloat() }
            logits[length + 3] = -.infinity
            logits[2 * length] = 95
            logits[5 * length + 1] = .nan
            var expected = logits
            expected.withUnsafeMutableBufferPointer { buffer in
                for r in 0..<count {
                    let row = buffer.baseAddress! + r * length
                    SoftmaxKernel.softmaxRow(row, row, length)
                }
            }
            for isa in KernelISA.available {
                var actual = logits
                actual.withUnsafeMutableBufferPointer { buffer in
                    SoftmaxKernel.softmaxRowsInPlace(buffer.baseAddress!, count: count, length: length, stride: length, isa: isa)
                }
                #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "length \(length), \(isa)")
                #expect(actual[5 * length].isNaN && !actual[0].isNaN)
            }
        }
    }

    /// The softmax of the bf16 attention (`chatter_softmax_rows_for_bf16`: exp with FMAs and
    /// `vscalefps`) against the exact rows (`chatter_softmax_rows`): within 1e-5 relative per
    /// probability (seen: ≤ 1.1e-6: the two round the polynomial's products differently and sum the
    /// row in another order), 400× inside the 2⁻⁸ bf16 rounding the probabilities get next; over
    /// lengths that end inside a vector and scores to ±30; a NaN
    /// row and an all −inf row give NaN as the exact one does. Below avx512_bf16 it does nothing.
    @Test func bf16AttentionSoftmaxStaysWithin1e5OfTheExactOne() {
        var generator = SplitMix64(seed: 23)
        for length in [1, 7, 16, 17, 300, 801] {
            let rows = 5
            var scores = (0..<rows * length).map { _ in (generator.nextFloat() * 2 - 1) * 30 }
            var exact = scores
            chatter_softmax_rows_isa(KernelISA.portable.c, &exact, rows, length, length)
            let done = chatter_softmax_rows_for_bf16(&scores, rows, length, length)
            guard KernelISA.current >= .avx512bf16 else {
                #expect(done == 0, "no bf16 attention softmax below avx512_bf16")
                continue
            }
            #expect(done == 1)
            var worst: Float = 0
            for i in scores.indices where exact[i] > 0 { worst = max(worst, abs(scores[i] - exact[i]) / exact[i]) }
            print("bf16 attention softmax, length \(length): max relative difference \(worst)")
            #expect(worst <= 1e-5, "length \(length): \(worst)")
            #expect(scores.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        guard KernelISA.current >= .avx512bf16 else { return }
        var special: [Float] = [1, .nan, 2, 3] + [Float](repeating: -.infinity, count: 4)
        _ = chatter_softmax_rows_for_bf16(&special, 2, 4, 4)
        #expect(special.allSatisfy { $0.isNaN }, "a NaN row and an all −inf row give NaN: \(special)")
        // A −inf score (a masked key) gets probability 0 and leaves the rest of its row finite.
        var masked: [Float] = [1, -.infinity, 2, 3]
        var exactMasked = masked
        chatter_softmax_rows_isa(KernelISA.portable.c, &exactMasked, 1, 4, 4)
        _ = chatter_softmax_rows_for_bf16(&masked, 1, 4, 4)
        #expect(masked[1] == 0 && exactMasked[1] == 0, "exp(−inf) is 0: \(masked)")
        #expect(zip(masked, exactMasked).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(masked) against \(exactMasked)")
    }
}
