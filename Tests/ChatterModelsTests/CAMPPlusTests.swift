import ChatterModels
import ChatterTensor
import Testing
import TestSupport

/// Upstream's CAMPPlus at a reduced size (growth 8, bottleneck 16, init channels 32, embedding 32;
/// the head and block depths 12/24/16 as upstream) with seeded random weights and BatchNorm
/// statistics, fed the torchaudio Kaldi fbank of real speech (tools/fixtures/fixturegen/voice.py).
@Suite struct CAMPPlusTests {
    static func load() throws -> (Fixture, CAMPPlus) {
        let fixture = try Fixture("voice/campplus")
        return (fixture, try CAMPPlus(weights: fixture.file.scoped("weights.")))
    }

    @Test func xvectorMatchesUpstream() throws {
        let (fixture, model) = try Self.load()
        #expect(model.embeddingSize == 32)
        let testCase = try #require(fixture.case("speech"))
        let xvector = try model.embed(fbank: try fixture.tensor(testCase, "fbank"))
        expectParity(xvector, try fixture.tensor(testCase, "xvector"), tolerance: 1e-4, "campplus x-vector")
    }

    @Test func badInputsAreTypedErrors() throws {
        let (_, model) = try Self.load()
        #expect(throws: CAMPPlusError.tooShort(frames: 2, minimum: 3)) { try model.embed(fbank: Tensor(zeros: [2, 80])) }
        #expect(throws: CAMPPlusError.badFeatures(shape: [10, 40], bins: 80)) { try model.embed(fbank: Tensor(zeros: [10, 40])) }
    }

    @Test func wrongShapedWeightsThrow() throws {
        let (fixture, _) = try Self.load()
        let source = fixture.file.scoped("weights.")
        struct Patched: WeightStore {
            let base: any WeightStore
            let key: String
            let replacement: Tensor?
            var source: String { base.source }
            func contains(_ k: String) -> Bool { k == key ? replacement != nil : base.contains(k) }
            func tensor(_ k: String) throws -> Tensor {
                if k == key {
                    guard let replacement else { throw TensorError.missingTensor(path: source, tensor: k) }
                    return replacement
                }
                return try base.tensor(k)
            }
        }
        #expect(throws: TensorError.self) {
            try CAMPPlus(weights: Patched(base: source, key: "xvector.transit2.linear.weight", replacement: Tensor(zeros: [3, 3, 1])))
        }
        #expect(throws: TensorError.self) {
            try CAMPPlus(weights: Patched(base: source, key: "head.layer1.0.bn2.running_var", replacement: nil))
        }
    }
}
