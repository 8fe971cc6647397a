import ChatterTensor

/// A LayerNorm over the last axis, loaded from `<prefix>weight` / `<prefix>bias`.
struct LayerNorm: Sendable {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    init(_ weights: some WeightStore, _ prefix: String, eps: Float) throws {
        weight = try weights.anyShapeFloat32(prefix + "weight")
        bias = try weights.float32(prefix + "bias", shape: weight.shape)
        self.eps = eps
    }

    /// `<prefix>weight` and `<prefix>bias`, both [features].
    init(_ weights: some WeightStore, _ prefix: String, features: Int, eps: Float) throws {
        weight = try weights.float32(prefix + "weight", shape: [features])
        bias = try weights.float32(prefix + "bias", shape: [features])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }

    /// Into a preallocated `output` (the decode step).
    func callAsFunction(_ x: Tensor, into output: Tensor) { layerNorm(x, weight: weight, bias: bias, eps: eps, into: output) }
}

/// An eval-mode BatchNorm over channels (`running_mean`, `running_var`, and `weight` / `bias` unless
/// `affine=False`); `num_batches_tracked` is never read.
struct BatchNorm1d: Sendable {
    let mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?

    /// `weights` scoped to the layer (`….bn.`).
    init(_ weights: any WeightStore, channels: Int, affine: Bool = true) throws {
        mean = try weights.float32("running_mean", shape: [channels])
        variance = try weights.float32("running_var", shape: [channels])
        weight = affine ? try weights.float32("weight", shape: [channels]) : nil
        bias = affine ? try weights.float32("bias", shape: [channels]) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        batchNorm(x, runningMean: mean, runningVar: variance, weight: weight, bias: bias, eps: 1e-5)
    }
}

/// An RMSNorm over the last axis (Llama), loaded from `<prefix>weight`.
struct RMSNorm: Sendable {
    let weight: Tensor
    let eps: Float

    init(_ weights: some WeightStore, _ prefix: String, features: Int, eps: Float) throws {
        weight = try weights.float32(prefix + "weight", shape: [features])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) -> Tensor { rmsNorm(x, weight: weight, eps: eps) }

    /// Into a preallocated `output` (the decode step).
    func callAsFunction(_ x: Tensor, into output: Tensor) { rmsNorm(x, weight: weight, eps: eps, into: output) }
}
