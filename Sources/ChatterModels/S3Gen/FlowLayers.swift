import ChatterTensor

// Small layers shared by the flow encoder and the CFM estimator, loaded by upstream state-dict names.

/// A Linear layer (`y = x·Wᵀ + b`) loaded from `<prefix>weight` / `<prefix>bias`.
struct FlowLinear: Sendable {
    let weight: Tensor
    let bias: Tensor?

    init(_ weights: some WeightStore, _ prefix: String, bias hasBias: Bool = true) throws {
        weight = try weights.flowFloat32(prefix + "weight")
        bias = hasBias ? try weights.float32(prefix + "bias", shape: [weight.shape[0]]) : nil
    }

    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight: weight, bias: bias) }
}

/// A LayerNorm over the last axis, loaded from `<prefix>weight` / `<prefix>bias`.
struct FlowLayerNorm: Sendable {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    init(_ weights: some WeightStore, _ prefix: String, eps: Float) throws {
        weight = try weights.flowFloat32(prefix + "weight")
        bias = try weights.float32(prefix + "bias", shape: weight.shape)
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// A Conv1d (`weight` [Cout, Cin, K], `bias` [Cout]).
struct FlowConv1d: Sendable {
    let weight: Tensor
    let bias: Tensor?

    init(_ weights: some WeightStore, _ prefix: String) throws {
        weight = try weights.flowFloat32(prefix + "weight")
        guard weight.rank == 3 else {
            throw TensorError.shapeMismatch(tensor: "\(weights.source): \(prefix)weight", expected: [-1, -1, -1], actual: weight.shape)
        }
        bias = try weights.float32(prefix + "bias", shape: [weight.shape[0]])
    }

    var outChannels: Int { weight.shape[0] }
    var kernel: Int { weight.shape[2] }

    func callAsFunction(_ x: Tensor, causal: Bool = false) -> Tensor {
        conv1d(x, weight: weight, bias: bias, paddingMode: causal ? .causal : .zeros)
    }
}

/// Zero padding on the time axis of [B, C, T].
func flowPadTime(_ x: Tensor, left: Int, right: Int) -> Tensor {
    var parts: [Tensor] = []
    if left > 0 { parts.append(Tensor(zeros: [x.shape[0], x.shape[1], left])) }
    parts.append(x)
    if right > 0 { parts.append(Tensor(zeros: [x.shape[0], x.shape[1], right])) }
    return parts.count == 1 ? x : concatenate(parts, axis: 2)
}

extension WeightStore {
    /// The tensor named `key`, whatever its shape, as f32 (shapes are checked by the layer using it).
    func flowFloat32(_ key: String) throws -> Tensor {
        let t = try tensor(key)
        return t.dtype == .f32 ? t : t.converted(to: .f32)
    }
}
