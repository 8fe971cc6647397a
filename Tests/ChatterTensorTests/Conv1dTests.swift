import Foundation
import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct Conv1dTests {
    static let name = "ops/conv1d"

    @Test func fixtureLoads() throws {
        #expect(try !Fixture(Self.name).cases.isEmpty)
    }

    // Reference: float64 torch on the float32 inputs. Each output is a dot product of Cin·K ≤ 540
    // terms summed in float32 (by OpenBLAS or our loops), whose rounding stays well under 1e-5 of
    // the output's scale.
    @Test(arguments: Fixture.caseNames(Self.name))
    func parityWithTorch(_ name: String) throws {
        let (fixture, c) = try Fixture.load(Self.name, case: name)
        let mode: Conv1dPadding = switch c.string("mode") {
        case "reflect": .reflect
        case "replicate": .replicate
        case "causal": .causal
        default: .zeros
        }
        let output = conv1d(try fixture.tensor(c, "input"), weight: try fixture.tensor(c, "weight"),
                            bias: fixture.has(c, "bias") ? try fixture.tensor(c, "bias") : nil,
                            stride: c.int("stride"), padding: c.int("padding"), dilation: c.int("dilation"),
                            groups: c.int("groups"), paddingMode: mode)
        expectParity(output, try fixture.tensor(c, "output"), tolerance: 1e-5, "conv1d \(name)")
    }

    @Test func acceptsNonContiguousInput() {
        let x = Tensor(shape: [1, 6, 2], scalars: (0..<12).map(Float.init)).transposed(1, 2)  // [1, 2, 6]
        let weight = Tensor(shape: [1, 2, 2], scalars: [1, 0, 0, 1])
        let y = conv1d(x, weight: weight)
        // y[t] = x[0, t] + x[1, t+1] with x[c, t] = 2t + c
        let expected: [Float] = (0..<5).map { (t: Int) -> Float in Float(4 * t + 3) }
        #expect(y.scalars() == expected)
    }

    /// Long enough that the im2col buffer is split into several time tiles.
    @Test func tiledLongInputMatchesDirectSum() {
        let (cin, cout, k, t, stride, dilation) = (64, 3, 3, 6000, 2, 2)
        let x = (0..<(cin * t)).map { Float(sin(Double($0) * 0.013)) }
        let w = (0..<(cout * cin * k)).map { Float(cos(Double($0) * 0.7)) / 8 }
        let y = conv1d(Tensor(shape: [1, cin, t], scalars: x), weight: Tensor(shape: [cout, cin, k], scalars: w),
                       stride: stride, padding: 1, dilation: dilation)
        let outLength = (t + 2 - dilation * (k - 1) - 1) / stride + 1
        #expect(y.shape == [1, cout, outLength])
        var expected = [Float](repeating: 0, count: cout * outLength)
        for o in 0..<cout {
            for i in 0..<outLength {
                var sum = 0.0
                for c in 0..<cin {
                    for j in 0..<k {
                        let p = i * stride - 1 + j * dilation
                        if p >= 0 && p < t { sum += Double(w[(o * cin + c) * k + j]) * Double(x[c * t + p]) }
                    }
                }
                expected[o * outLength + i] = Float(sum)
            }
        }
        expectParity(y.scalars(), expected, tolerance: 1e-5, "conv1d tiled")
    }
}
