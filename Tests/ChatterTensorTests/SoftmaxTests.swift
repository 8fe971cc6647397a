import Testing
import TestSupport
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
}
