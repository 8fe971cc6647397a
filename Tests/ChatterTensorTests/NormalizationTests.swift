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

    /// LayerNorm over the channels of [B, C, T] is bit-identical to transposing, normalising the
    /// rows and transposing back (C = 40 leaves a partial block of 16 channels; T = 37 a partial
    /// block of 16 time steps).
    @Test func layerNormOverChannelsEqualsTransposedRows() {
        var random = SplitMix64(seed: 0x1A7)
        for (batch, channels, length) in [(2, 256, 37), (1, 40, 16), (3, 7, 5)] {
            let x = Tensor(shape: [batch, channels, length],
                           scalars: (0..<(batch * channels * length)).map { _ in 4 * random.nextFloat() - 1 })
            let weight = Tensor(shape: [channels], scalars: (0..<channels).map { _ in random.nextFloat() + 0.5 })
            let bias = Tensor(shape: [channels], scalars: (0..<channels).map { _ in random.nextFloat() - 0.5 })
            let expected = layerNorm(x.transposed(1, 2), weight: weight, bias: bias, eps: 1e-5).transposed(1, 2).contiguous()
            expectParity(layerNormOverChannels(x, weight: weight, bias: bias, eps: 1e-5), expected, tolerance: 0,
                         "[\(batch), \(channels), \(length)]")
        }
    }
}
