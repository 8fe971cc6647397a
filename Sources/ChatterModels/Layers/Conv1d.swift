import ChatterTensor

/// A `Conv1d` (weight [out, in, k], bias [out]) with its geometry (zero padding; `causal` pads
/// k − 1 frames on the left instead).
struct Conv1d: Sendable {
    let weight: Tensor
    /// The bf16 weight laid out for the native bf16 GEMM once, at load (nil for f32 weights, depthwise
    /// kernels, or a CPU without avx512_bf16).
    let packed: PackedConvWeightBF16?
    let bias: Tensor?
    var stride = 1
    var padding = 0
    var dilation = 1

    /// `<prefix>weight` of any [out, in, k] shape and `<prefix>bias`, no padding.
    init(_ weights: some WeightStore, _ prefix: String) throws {
        let weight = try weights.anyShapeFloat32(prefix + "weight")
        guard weight.rank == 3 else {
            throw TensorError.shapeMismatch(tensor: "\(weights.source): \(prefix)weight", expected: [-1, -1, -1], actual: weight.shape)
        }
        self.weight = Conv1d.held(weight, weights)
        packed = PackedConvWeightBF16(weight: self.weight)
        bias = try weights.float32(prefix + "bias", shape: [weight.shape[0]])
    }

    /// `<name>.weight` [out, in, kernel] (weight-normed or plain, see `loadWeightNormed`) and, unless
    /// `bias` is false, `<name>.bias`.
    init(_ weights: any WeightStore, _ name: String, out: Int, in inChannels: Int, kernel: Int, weightNormed: Bool = false,
         bias hasBias: Bool = true, stride: Int = 1, padding: Int = 0, dilation: Int = 1) throws {
        let shape = [out, inChannels, kernel]
        // Contiguous once at load (torch checkpoints may hold strided views); conv1d would copy per call.
        weight = Conv1d.held((weightNormed ? try loadWeightNormed(weights, name, shape: shape)
                                           : try weights.float32(name + ".weight", shape: shape)).contiguous(), weights)
        packed = PackedConvWeightBF16(weight: weight)
        bias = hasBias ? try weights.float32(name + ".bias", shape: [out]).contiguous() : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    var outChannels: Int { weight.shape[0] }
    var kernel: Int { weight.shape[2] }

    /// The weight in the store's `layerMatrixDType`; depthwise kernels (one input channel) stay f32,
    /// as their direct loop has no bf16 form.
    private static func held(_ weight: Tensor, _ weights: some WeightStore) -> Tensor {
        weight.shape[1] > 1 ? weights.layerMatrix(weight) : weight
    }

    func callAsFunction(_ x: Tensor, causal: Bool = false) -> Tensor {
        conv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
               paddingMode: causal ? .causal : .zeros, packed: packed)
    }
}

/// A weight that upstream wraps in `weight_norm`: the plain `<name>.weight` of a converted file, or
/// folded at load from `<name>.parametrizations.weight.original0/1` (upstream files) or the legacy
/// `<name>.weight_g/_v`.
func loadWeightNormed(_ store: any WeightStore, _ name: String, shape: [Int]) throws -> Tensor {
    if store.contains(name + ".weight") { return try store.float32(name + ".weight", shape: shape) }
    let magnitudeShape = [shape[0]] + Array(repeating: 1, count: shape.count - 1)
    if !store.contains(name + ".parametrizations.weight.original0") && store.contains(name + ".weight_g") {
        let g = try store.float32(name + ".weight_g", shape: magnitudeShape)
        let v = try store.float32(name + ".weight_v", shape: shape)
        return foldWeightNorm(magnitude: g, direction: v)
    }
    let g = try store.float32(name + ".parametrizations.weight.original0", shape: magnitudeShape)
    let v = try store.float32(name + ".parametrizations.weight.original1", shape: shape)
    return foldWeightNorm(magnitude: g, direction: v)
}

/// A `ConvTranspose1d` (weight [in, out, k], bias [out]) with its stride and padding.
struct ConvTranspose1d: Sendable {
    let weight: Tensor
    let bias: Tensor?
    let stride: Int
    let padding: Int

    /// `<name>.weight` [in, out, kernel] (weight-normed or plain, see `loadWeightNormed`) and `<name>.bias`.
    init(_ weights: any WeightStore, _ name: String, in inChannels: Int, out: Int, kernel: Int, weightNormed: Bool = false,
         stride: Int, padding: Int) throws {
        let shape = [inChannels, out, kernel]
        weight = weightNormed ? try loadWeightNormed(weights, name, shape: shape) : try weights.float32(name + ".weight", shape: shape)
        bias = try weights.float32(name + ".bias", shape: [out])
        self.stride = stride
        self.padding = padding
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose1d(x, weight: weight, bias: bias, stride: stride, padding: padding)
    }
}
