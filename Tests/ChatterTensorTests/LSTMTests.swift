import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct LSTMTests {
    static let name = "ops/lstm"

    @Test func fixtureLoads() throws {
        #expect(try !Fixture(Self.name).cases.isEmpty)
    }

    // Reference: float64 torch on the float32 inputs. Each step's gate is a ≤ 168-term dot product
    // and the recurrence contracts errors (|σ'| ≤ 1/4, |tanh'| ≤ 1), so float32 rounding stays near
    // 1e-7 relative after 10 steps and 3 layers; 1e-5 is the library default, not a loosening.
    @Test(arguments: Fixture.caseNames(Self.name))
    func parityWithTorch(_ name: String) throws {
        let (fixture, c) = try Fixture.load(Self.name, case: name)
        let layers = try LSTMLayer.stack(layers: c.int("layers")) { try fixture.tensor(c, $0) }
        let initial = c.bool("initial_state")
            ? LSTMState(h: try fixture.tensor(c, "h0"), c: try fixture.tensor(c, "c0")) : nil
        let (output, state) = lstm(try fixture.tensor(c, "input"), layers: layers, initialState: initial)
        expectParity(output, try fixture.tensor(c, "output"), tolerance: 1e-5, "lstm \(name) output")
        expectParity(state.h, try fixture.tensor(c, "h"), tolerance: 1e-5, "lstm \(name) h")
        expectParity(state.c, try fixture.tensor(c, "c"), tolerance: 1e-5, "lstm \(name) c")
    }

    @Test func unbatchedMatchesBatchOfOne() throws {
        let fixture = try Fixture(Self.name)
        let c = fixture.cases.first { $0.name == "tiny_state" }!
        let layers = try LSTMLayer.stack(layers: c.int("layers")) { try fixture.tensor(c, $0) }
        let x = try fixture.tensor(c, "input").slice(0, 0..<1)
        let batched = lstm(x, layers: layers)
        let single = lstm(x.reshaped(Array(x.shape.dropFirst())), layers: layers)
        #expect(single.output.shape == Array(batched.output.shape.dropFirst()))
        #expect(single.output.scalars() == batched.output.scalars())
        #expect(single.state.h.shape == [c.int("layers"), c.int("hidden")])
        #expect(single.state.c.scalars() == batched.state.c.scalars())
    }
}
