import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct WeightNormTests {
    /// torch computes the norm in f32; we accumulate in Double, so the two differ by float rounding.
    @Test func foldMatchesTorchParametrization() throws {
        let fixture = try Fixture("ops/weight_norm")
        #expect(fixture.cases.count == 3)
        for testCase in fixture.cases {
            let folded = foldWeightNorm(magnitude: try fixture.tensor(testCase, "g"), direction: try fixture.tensor(testCase, "v"))
            expectParity(folded, try fixture.tensor(testCase, "weight"), tolerance: 1e-6, "weight_norm \(testCase.name)")
        }
    }
}
