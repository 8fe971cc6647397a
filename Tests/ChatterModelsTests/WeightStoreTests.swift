import ChatterTensor
import Testing
@testable import ChatterModels

@Suite struct WeightStoreTests {
    @Test func scopedStoresCheckShapesAndNameTheSource() throws {
        let store = InMemoryWeights(["tfmr.layers.0.mlp.up_proj.weight": Tensor(zeros: [8, 4])], source: "t3.safetensors")
        let layer = store.scoped("tfmr.layers.0.")
        #expect(layer.contains("mlp.up_proj.weight"))
        #expect(try layer.tensor("mlp.up_proj.weight", shape: [8, 4]).shape == [8, 4])
        #expect(throws: TensorError.shapeMismatch(tensor: "t3.safetensors: mlp.up_proj.weight", expected: [4, 8], actual: [8, 4])) {
            try layer.tensor("mlp.up_proj.weight", shape: [4, 8])
        }
        #expect(throws: TensorError.missingTensor(path: "t3.safetensors", tensor: "tfmr.layers.0.mlp.gate_proj.weight")) {
            try layer.tensor("mlp.gate_proj.weight")
        }
        #expect(try store.float32("tfmr.layers.0.mlp.up_proj.weight", shape: [8, 4]).dtype == .f32)
    }
}
