import Testing
import TestSupport
@testable import ChatterTensor

@Suite("Normalization")
struct NormalizationTests {
    let fixture: Fixture
    init() throws { fixture = try Fixture("ops/norms") }

    func optional(_ c: Fixture.Case, _ role: String) throws -> Tensor? {
        fixture.has(c, role) ? try fixture.tensor(c, role) : nil
    }

    @Test func norms() throws {
        for c in fixture.cases {
            let x = try fixture.tensor(c, "input"), expected = try fixture.tensor(c, "output")
            let eps = c.float("eps")
            let actual: Tensor
            switch c.name {
            case let n where n.hasPrefix("rms"):
                actual = rmsNorm(x, weight: try fixture.tensor(c, "weight"), eps: eps)
            case let n where n.hasPrefix("layer"):
                actual = layerNorm(x, weight: try optional(c, "weight"), bias: try optional(c, "bias"), eps: eps)
            case let n where n.hasPrefix("group"):
                actual = groupNorm(x, groups: c.int("groups"), weight: try optional(c, "weight"), bias: try optional(c, "bias"), eps: eps)
            default:
                actual = batchNorm(x, runningMean: try fixture.tensor(c, "mean"), runningVar: try fixture.tensor(c, "var"),
                                   weight: try optional(c, "weight"), bias: try optional(c, "bias"), eps: eps)
            }
            expectParity(actual, expected, tolerance: 1e-6, "\(c)")
        }
    }

    @Test func rmsNormInPlace() throws {
        let c = fixture.cases.first { $0.name == "rms" }!
        let x = try fixture.tensor(c, "input").copy()
        rmsNorm(x, weight: try fixture.tensor(c, "weight"), eps: c.float("eps"), into: x)
        expectParity(x, try fixture.tensor(c, "output"), tolerance: 1e-6, "rms in place")
    }

    /// The decode step's allocation-free LayerNorm (GPT-2) against torch, in place, on every
    /// fixture case that has both a weight and a bias.
    @Test func layerNormInPlace() throws {
        var checked = 0
        for c in fixture.cases where c.name.hasPrefix("layer") && fixture.has(c, "weight") && fixture.has(c, "bias") {
            let x = try fixture.tensor(c, "input").copy()
            layerNorm(x, weight: try fixture.tensor(c, "weight"), bias: try fixture.tensor(c, "bias"), eps: c.float("eps"), into: x)
            expectParity(x, try fixture.tensor(c, "output"), tolerance: 1e-6, "\(c) in place")
            checked += 1
        }
        #expect(checked > 0)
    }
}
