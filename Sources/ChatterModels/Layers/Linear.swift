import ChatterTensor

// The layer vocabulary every network is built from (this folder): each layer loads its own weights
// by their upstream checkpoint keys (`<prefix>weight`, `<prefix>bias`: the keys are its properties,
// as in MLXNN) and runs one ChatterTensor op. The backend seam sits under the layers, in how a
// weight is held (`WeightStore.float32` / `.matrix`: f32, or bf16 / q8_0 kept as stored for the GEMV
// kernels) and in the ops, which dispatch on the weight's dtype and storage; an int8 format or a
// CUDA storage plugs in there without touching a network.

/// A Linear layer (`y = x·Wᵀ + b`, weight [out, in]) loaded from `<prefix>weight` / `<prefix>bias`.
struct Linear: Sendable {
    let weight: Tensor
    let bias: Tensor?

    /// Any weight shape the file holds (the network checks what it needs), as f32.
    init(_ weights: some WeightStore, _ prefix: String, bias hasBias: Bool = true) throws {
        weight = try weights.anyShapeFloat32(prefix + "weight")
        bias = hasBias ? try weights.float32(prefix + "bias", shape: [weight.shape[0]]) : nil
    }

    /// `<prefix>weight` [out, in] and `<prefix>bias` [out], checked, as f32.
    init(_ weights: some WeightStore, _ prefix: String, out: Int, in inFeatures: Int, bias hasBias: Bool = true) throws {
        weight = try weights.float32(prefix + "weight", shape: [out, inFeatures])
        bias = hasBias ? try weights.float32(prefix + "bias", shape: [out]) : nil
    }

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

extension WeightStore {
    /// The tensor named `key`, whatever its shape, as f32 (shapes are checked by the layer using it).
    func anyShapeFloat32(_ key: String) throws -> Tensor {
        let t = try tensor(key)
        return t.dtype == .f32 ? t : t.converted(to: .f32)
    }
}
