import Testing
import TestSupport
@testable import ChatterTensor

@Suite("Rotary")
struct RotaryTests {
    let fixture: Fixture
    let rope = RotaryEmbedding(headDim: 64, theta: 500_000, llama3Scaling: Llama3RopeScaling())
    init() throws { fixture = try Fixture("ops/rotary") }

    func testCase(_ name: String) -> Fixture.Case { fixture.cases.first { $0.name == name }! }

    @Test func llama3InverseFrequencies() throws {
        // Same f32 operations in the same order as transformers: expect (near) bit equality.
        let expected = try fixture.tensor(testCase("inv_freq"), "inv_freq")
        expectParity(Tensor(shape: [32], scalars: rope.inverseFrequencies), expected, tolerance: 1e-7, "inv_freq")
    }

    @Test func tablesAndRotation() throws {
        for name in ["prefill", "decode", "far"] {
            let c = testCase(name)
            let q = try fixture.tensor(c, "q"), k = try fixture.tensor(c, "k")
            let offset = c.int("offset")
            let (cos, sin) = rope.tables(positions: offset..<(offset + q.shape[2]))
            // cos/sin of angles up to ~5000 rad: libm and Sleef agree to an ulp of the result.
            expectParity(cos, try fixture.tensor(c, "cos"), tolerance: 1e-6, "\(c) cos")
            expectParity(sin, try fixture.tensor(c, "sin"), tolerance: 1e-6, "\(c) sin")
            expectParity(rope.apply(q, positionOffset: offset), try fixture.tensor(c, "q_out"), tolerance: 1e-6, "\(c) q")
            let kk = k.copy()
            rope.applyInPlace(kk, positionOffset: offset)
            expectParity(kk, try fixture.tensor(c, "k_out"), tolerance: 1e-6, "\(c) k in place")
        }
    }

    @Test func perBatchPositions() throws {
        let c = testCase("per_batch")
        let out = applyRotary(try fixture.tensor(c, "q"), cos: try fixture.tensor(c, "cos"), sin: try fixture.tensor(c, "sin"))
        expectParity(out, try fixture.tensor(c, "q_out"), tolerance: 1e-6, "per-batch positions")
    }
}
