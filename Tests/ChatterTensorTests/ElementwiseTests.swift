import Testing
import TestSupport
@testable import ChatterTensor

@Suite("Elementwise")
struct ElementwiseTests {
    let fixture: Fixture
    init() throws { fixture = try Fixture("ops/elementwise") }

    @Test func broadcastingArithmetic() throws {
        for c in fixture.cases where fixture.has(c, "divisor") {
            let a = try fixture.tensor(c, "a"), b = try fixture.tensor(c, "b"), d = try fixture.tensor(c, "divisor")
            // +, −, ·, max, min are exact in f32; division is correctly rounded too.
            expectParity(a + b, try fixture.tensor(c, "add"), tolerance: 0, "\(c) add")
            expectParity(a - b, try fixture.tensor(c, "sub"), tolerance: 0, "\(c) sub")
            expectParity(a * b, try fixture.tensor(c, "mul"), tolerance: 0, "\(c) mul")
            expectParity(a / d, try fixture.tensor(c, "div"), tolerance: 0, "\(c) div")
            expectParity(maximum(a, b), try fixture.tensor(c, "maximum"), tolerance: 0, "\(c) maximum")
            expectParity(minimum(a, b), try fixture.tensor(c, "minimum"), tolerance: 0, "\(c) minimum")
        }
    }

    @Test func scalarOperandsAndClamp() throws {
        let c = fixture.cases.first { $0.name == "scalar" }!
        let x = try fixture.tensor(c, "x"), s = c.float("s")
        expectParity(x + s, try fixture.tensor(c, "add"), tolerance: 0, "x + s")
        expectParity(x * s, try fixture.tensor(c, "mul"), tolerance: 0, "x * s")
        expectParity(s - x, try fixture.tensor(c, "rsub"), tolerance: 0, "s - x")
        let denominator = add(maximum(x, -x), 1)
        // torch evaluates a scalar numerator as s · (1/x): one extra rounding, so 1 ulp apart.
        expectParity(s / denominator, try fixture.tensor(c, "rdiv"), tolerance: 2e-7, "s / (|x| + 1)")
        expectParity(clamp(x, min: -1.5, max: 2), try fixture.tensor(c, "clamp"), tolerance: 0, "clamp")
    }

    @Test func inPlaceOps() throws {
        let c = fixture.cases.first { $0.name == "channel" }!
        let a = try fixture.tensor(c, "a").copy(), b = try fixture.tensor(c, "b")
        addInPlace(a, b)
        expectParity(a, try fixture.tensor(c, "add"), tolerance: 0, "addInPlace")
        let m = try fixture.tensor(c, "a").copy()
        mulInPlace(m, b)
        expectParity(m, try fixture.tensor(c, "mul"), tolerance: 0, "mulInPlace")
        scaleInPlace(m, by: 2)
        expectParity(m, mul(try fixture.tensor(c, "mul"), 2), tolerance: 0, "scaleInPlace")
    }

    @Test func concatenation() throws {
        for c in fixture.cases where c.name.hasPrefix("concat") {
            var parts: [Tensor] = []
            var i = 0
            while fixture.has(c, "p\(i)") { parts.append(try fixture.tensor(c, "p\(i)")); i += 1 }
            expectParity(concatenate(parts, axis: c.int("axis")), try fixture.tensor(c, "output"), tolerance: 0, "\(c)")
        }
    }

    @Test func nonContiguousOperands() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]).transposed()
        let b = Tensor(shape: [3, 1], scalars: [10, 20, 30])
        #expect((a + b).scalars() == [11, 14, 22, 25, 33, 36])
    }

    @Test func largeParallelBroadcast() {
        let rows = 300, n = 257
        let x = Tensor(shape: [rows, n], scalars: (0..<(rows * n)).map { Float($0 % 97) })
        let bias = Tensor(shape: [n], scalars: (0..<n).map { Float($0) })
        let y = (x + bias).scalars()
        for r in [0, 150, 299] { for j in [0, 100, 256] { #expect(y[r * n + j] == Float((r * n + j) % 97) + Float(j)) } }
    }
}
