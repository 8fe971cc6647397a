import ChatterTensor

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

/// A `Conv1d` with its geometry (zero padding).
struct HiFTConv: Sendable {
    let weight: Tensor
    let bias: Tensor
    var stride = 1
    var padding = 0
    var dilation = 1

    /// Loads `<name>.weight` (weight-normed or plain) and `<name>.bias`, weight [out, in, k].
    init(_ store: any WeightStore, _ name: String, out: Int, in inChannels: Int, kernel: Int, weightNormed: Bool,
         stride: Int = 1, padding: Int = 0, dilation: Int = 1) throws {
        let shape = [out, inChannels, kernel]
        weight = weightNormed ? try loadWeightNormed(store, name, shape: shape) : try store.float32(name + ".weight", shape: shape)
        bias = try store.float32(name + ".bias", shape: [out])
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        conv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// HiFT's `ResBlock`: for each dilation d, x ← x + conv2(snake₂(conv1_d(snake₁(x)))).
struct HiFTResBlock: Sendable {
    let convs1: [HiFTConv]
    let convs2: [HiFTConv]
    let alphas1: [Tensor]
    let alphas2: [Tensor]

    init(_ store: any WeightStore, channels: Int, kernel: Int, dilations: [Int]) throws {
        var c1: [HiFTConv] = [], c2: [HiFTConv] = [], a1: [Tensor] = [], a2: [Tensor] = []
        for (i, d) in dilations.enumerated() {
            c1.append(try HiFTConv(store, "convs1.\(i)", out: channels, in: channels, kernel: kernel, weightNormed: true,
                                   padding: d * (kernel - 1) / 2, dilation: d))
            c2.append(try HiFTConv(store, "convs2.\(i)", out: channels, in: channels, kernel: kernel, weightNormed: true,
                                   padding: (kernel - 1) / 2))
            a1.append(try store.float32("activations1.\(i).alpha", shape: [channels]))
            a2.append(try store.float32("activations2.\(i).alpha", shape: [channels]))
        }
        (convs1, convs2, alphas1, alphas2) = (c1, c2, a1, a2)
    }

    func callAsFunction(_ input: Tensor) -> Tensor {
        var x = input
        for i in convs1.indices {
            let t = convs1[i](snake(x, alpha: alphas1[i]))
            snakeInPlace(t, alpha: alphas2[i])
            let y = convs2[i](t)
            addInPlace(y, x)
            x = y
        }
        return x
    }
}

/// `ConvRNNF0Predictor` (no RNN despite the name): five weight-normed k3 convolutions with ELU, a
/// per-frame Linear(C→1) and |·| → f0 in Hz.
public struct HiFTF0Predictor: Sendable {
    let condnet: [HiFTConv]
    let classifierWeight: [Float]
    let classifierBias: Float

    /// `store` is scoped to `f0_predictor.`.
    public init(_ store: any WeightStore, inChannels: Int, condChannels: Int) throws {
        condnet = try (0..<5).map { i in
            try HiFTConv(store, "condnet.\(2 * i)", out: condChannels, in: i == 0 ? inChannels : condChannels, kernel: 3,
                         weightNormed: true, padding: 1)
        }
        classifierWeight = try store.float32("classifier.weight", shape: [1, condChannels]).scalars()
        classifierBias = try store.float32("classifier.bias", shape: [1]).scalars()[0]
    }

    /// mel [1, inChannels, M] → f0 [M] (Hz).
    public func callAsFunction(_ mel: Tensor) -> [Float] {
        var x = mel
        for conv in condnet {
            x = conv(x)
            eluInPlace(x)
        }
        let channels = x.shape[1], frames = x.shape[2]
        let h = x.contiguous().scalars()
        var f0 = [Float](repeating: 0, count: frames)
        for t in 0..<frames {
            var sum: Float = 0
            for c in 0..<channels { sum += classifierWeight[c] * h[c * frames + t] }
            f0[t] = abs(sum + classifierBias)
        }
        return f0
    }
}
