import ChatterTensor

// The layer vocabulary every network is built from (this folder): each layer loads its own weights
// by their upstream checkpoint keys (`<prefix>weight`, `<prefix>bias`: the keys are its properties,
// as in MLXNN) and runs one ChatterTensor op. The backend seam sits under the layers: how a weight
// matrix is held (`WeightFormat`) and the ops, which dispatch on the weight's dtype and storage; an
// int8 format or a CUDA storage plugs in there without touching a network.

/// How a layer holds its weight matrix.
enum WeightFormat: Sendable {
    /// Converted to f32 at load (`WeightStore.float32`).
    case float32
    /// Kept as stored where the GEMV / GEMM kernels read that dtype in place (f32, bf16, f16, q8_0), other
    /// dtypes converted to f32 once (`WeightStore.matrix`): T3's decode-bound weights.
    case kernelNative
    /// Exactly as stored (`WeightStore.tensor`); the op widens per call where it must.
    case asStored

    func load(_ weights: some WeightStore, _ key: String, shape: [Int]) throws -> Tensor {
        switch self {
        case .float32: try weights.float32(key, shape: shape)
        case .kernelNative: try weights.matrix(key, shape: shape)
        case .asStored: try weights.tensor(key, shape: shape)
        }
    }
}

/// A Linear layer (`y = x·Wᵀ + b`, weight [out, in]) loaded from `<prefix>weight` / `<prefix>bias`.
struct Linear: Sendable {
    let weight: Tensor
    let bias: Tensor?

    /// Any weight shape the file holds (the network checks what it needs), in the store's
    /// `layerMatrixDType` (f32 unless a network computes in bf16).
    init(_ weights: some WeightStore, _ prefix: String, bias hasBias: Bool = true) throws {
        weight = weights.layerMatrix(try weights.anyShapeFloat32(prefix + "weight"))
        bias = hasBias ? try weights.float32(prefix + "bias", shape: [weight.shape[0]]) : nil
    }

    /// A weight and bias loaded by the network itself (a layout the store does not know, or views of a fused weight).
    init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    /// `<prefix>weight` [out, in] held as `format` says and `<prefix>bias` [out] as f32, both checked.
    init(_ weights: some WeightStore, _ prefix: String, out: Int, in inFeatures: Int, bias hasBias: Bool = true,
         format: WeightFormat = .float32) throws {
        weight = try format.load(weights, prefix + "weight", shape: [out, inFeatures])
        bias = hasBias ? try weights.float32(prefix + "bias", shape: [out]) : nil
    }

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }

    /// One decode step's rows through the GEMV kernels, into a preallocated `output` (no allocation).
    func decode(_ x: Tensor, into output: Tensor) { gemv(x, weight: weight, bias: bias, into: output) }
}

extension WeightStore {
    /// The tensor named `key`, whatever its shape, as f32 (shapes are checked by the layer using it).
    func anyShapeFloat32(_ key: String) throws -> Tensor {
        let t = try tensor(key)
        return t.dtype == .f32 ? t : t.converted(to: .f32)
    }
}
