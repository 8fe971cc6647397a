import ChatterTensor

/// HiFT's `ResBlock`: for each dilation d, x ← x + conv2(snake₂(conv1_d(snake₁(x)))).
struct HiFTResBlock: Sendable {
    let convs1: [Conv1d]
    let convs2: [Conv1d]
    let alphas1: [Tensor]
    let alphas2: [Tensor]

    init(_ store: any WeightStore, channels: Int, kernel: Int, dilations: [Int]) throws {
        var c1: [Conv1d] = [], c2: [Conv1d] = [], a1: [Tensor] = [], a2: [Tensor] = []
        for (i, d) in dilations.enumerated() {
            c1.append(try Conv1d(store, "convs1.\(i)", out: channels, in: channels, kernel: kernel, weightNormed: true,
                                   padding: d * (kernel - 1) / 2, dilation: d))
            c2.append(try Conv1d(store, "convs2.\(i)", out: channels, in: channels, kernel: kernel, weightNormed: true,
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
    let condnet: [Conv1d]
    let classifierWeight: [Float]
    let classifierBias: Float

    /// `store` is scoped to `f0_predictor.`.
    public init(_ store: any WeightStore, inChannels: Int, condChannels: Int) throws {
        condnet = try (0..<5).map { i in
            try Conv1d(store, "condnet.\(2 * i)", out: condChannels, in: i == 0 ? inChannels : condChannels, kernel: 3,
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
