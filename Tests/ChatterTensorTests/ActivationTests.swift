import Testing
import TestSupport
import Foundation
@testable import ChatterTensor

@Suite("Activations")
struct ActivationTests {
    let fixture: Fixture
    init() throws { fixture = try Fixture("ops/activations") }

    @Test func activations() throws {
        let ops: [(String, (Tensor) -> Tensor, Float)] = [
            ("silu", silu, 1e-6), ("sigmoid", sigmoid, 1e-6), ("tanh", tanh, 1e-6),
            ("relu", relu, 0), ("leaky_relu", { leakyReLU($0, slope: 0.1) }, 0),
            ("elu", { elu($0, alpha: 1) }, 1e-6), ("gelu", gelu, 1e-6),
            ("gelu_tanh", geluTanh, 1e-6), ("mish", mish, 1e-6),
        ]
        for c in fixture.cases where fixture.has(c, "silu") {
            let x = try fixture.tensor(c, "input")
            for (name, op, tolerance) in ops {
                expectParity(op(x), try fixture.tensor(c, name), tolerance: tolerance, "\(c) \(name)")
                let y = x.copy()
                let inPlace: [String: (Tensor) -> Void] = ["silu": siluInPlace, "gelu": geluInPlace, "mish": mishInPlace, "sigmoid": sigmoidInPlace]
                if let f = inPlace[name] {
                    f(y)
                    expectParity(y, try fixture.tensor(c, name), tolerance: tolerance, "\(c) \(name) in place")
                }
            }
        }
    }

    /// The vector exp against torch.exp, relative per element (softmax and SiLU rest on it).
    @Test func vectorExp() throws {
        for c in fixture.cases where fixture.has(c, "exp") {
            let x = try fixture.tensor(c, "input").scalars().map { min($0, 80) }
            let expected = try fixture.tensor(c, "exp").scalars()
            var worst: Float = 0
            var i = 0
            while i < x.count {
                var v = SIMD16<Float>(repeating: 0)
                for j in 0..<min(16, x.count - i) { v[j] = x[i + j] }
                let e = VectorMath.exp(v)
                for j in 0..<min(16, x.count - i) where expected[i + j] > 1e-37 {
                    worst = max(worst, abs(e[j] - expected[i + j]) / expected[i + j])
                }
                i += 16
            }
            print("vector exp \(c): max relative error \(worst)")
            #expect(worst < 4e-7)
        }
        let special = VectorMath.exp(SIMD16<Float>(-.infinity, .infinity, .nan, 89, -104, 0, 88.7, -87.5, 1, 2, 3, 4, 5, 6, 7, 8))
        #expect(special[0] == 0 && special[1] == .infinity && special[2].isNaN && special[3] == .infinity)
        #expect(special[4] == 0 && special[5] == 1 && special[6].isFinite && special[7] > 0)
    }

    /// The vector sin (Snake's inner loop) against libm over the range where it does its own reduction.
    @Test func vectorSin() {
        var worst: Float = 0
        var x: Float = -8190
        while x < 8190 {
            var v = SIMD16<Float>()
            for j in 0..<16 { v[j] = x + Float(j) * 0.37 }
            let s = VectorMath.sin(v)
            for j in 0..<16 { worst = max(worst, abs(s[j] - Foundation.sin(v[j]))) }
            x += 3.3
        }
        print("vector sin: max absolute error \(worst)")
        #expect(worst < 1e-6)
    }

    @Test func snake() throws {
        for c in fixture.cases where c.name.hasPrefix("snake") {
            let x = try fixture.tensor(c, "input"), alpha = try fixture.tensor(c, "alpha")
            // sin of large arguments (snake_large reaches |αx| ~ 4e4) is sensitive to the argument's
            // own rounding, so the bound allows a few ulp of the output scale.
            expectParity(ChatterTensor.snake(x, alpha: alpha), try fixture.tensor(c, "output"), tolerance: 2e-6, "\(c)")
        }
    }
}
