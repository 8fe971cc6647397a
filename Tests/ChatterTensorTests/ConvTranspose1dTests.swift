import Foundation
import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct ConvTranspose1dTests {
    static let name = "ops/conv_transpose1d"

    @Test func fixtureLoads() throws {
        #expect(try !Fixture(Self.name).cases.isEmpty)
    }

    // Reference: float64 torch on the float32 inputs; each output sums ≤ Cin·⌈K/stride⌉ float32
    // products, far below 1e-5 relative rounding.
    @Test(arguments: Fixture.caseNames(Self.name))
    func parityWithTorch(_ name: String) throws {
        let (fixture, c) = try Fixture.load(Self.name, case: name)
        let output = convTranspose1d(try fixture.tensor(c, "input"), weight: try fixture.tensor(c, "weight"),
                                     bias: fixture.has(c, "bias") ? try fixture.tensor(c, "bias") : nil,
                                     stride: c.int("stride"), padding: c.int("padding"),
                                     outputPadding: c.int("output_padding"), dilation: c.int("dilation"),
                                     groups: c.int("groups"))
        expectParity(output, try fixture.tensor(c, "output"), tolerance: 1e-5, "convTranspose1d \(name)")
    }

    /// Long enough that the column buffer is split into several time tiles whose outputs overlap.
    @Test func tiledLongInputMatchesDirectSum() {
        let (cin, cout, k, t, stride, padding) = (3, 64, 16, 2500, 8, 4)
        let x = (0..<(cin * t)).map { Float(sin(Double($0) * 0.013)) }
        let w = (0..<(cin * cout * k)).map { Float(cos(Double($0) * 0.7)) }
        let y = convTranspose1d(Tensor(shape: [1, cin, t], scalars: x), weight: Tensor(shape: [cin, cout, k], scalars: w),
                                stride: stride, padding: padding)
        let outLength = (t - 1) * stride - 2 * padding + k
        #expect(y.shape == [1, cout, outLength])
        var expected = [Double](repeating: 0, count: cout * outLength)
        for c in 0..<cin {
            for i in 0..<t {
                for o in 0..<cout {
                    for j in 0..<k {
                        let p = i * stride - padding + j
                        if p >= 0 && p < outLength { expected[o * outLength + p] += Double(x[c * t + i]) * Double(w[(c * cout + o) * k + j]) }
                    }
                }
            }
        }
        expectParity(y.scalars(), expected.map { Float($0) }, tolerance: 1e-5, "convTranspose1d tiled")
    }
}
