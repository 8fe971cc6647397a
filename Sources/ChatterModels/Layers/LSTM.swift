import ChatterTensor

/// A stacked unidirectional `nn.LSTM(batch_first=True)` loaded from `<prefix>weight_ih_l{k}`,
/// `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, every shape checked at load (layer 0 takes
/// `inputSize` features, the others the hidden size), running the `lstm` op.
struct LSTM: Sendable {
    let layers: [LSTMLayer]

    init(_ weights: some WeightStore, _ prefix: String, layers count: Int, inputSize: Int, hiddenSize: Int, bias: Bool = true) throws {
        let gates = 4 * hiddenSize
        layers = try (0..<count).map { k in
            LSTMLayer(weightIH: try weights.float32(prefix + "weight_ih_l\(k)", shape: [gates, k == 0 ? inputSize : hiddenSize]),
                      weightHH: try weights.float32(prefix + "weight_hh_l\(k)", shape: [gates, hiddenSize]),
                      biasIH: bias ? try weights.float32(prefix + "bias_ih_l\(k)", shape: [gates]) : nil,
                      biasHH: bias ? try weights.float32(prefix + "bias_hh_l\(k)", shape: [gates]) : nil)
        }
    }

    var hiddenSize: Int { layers[0].hiddenSize }

    /// `x` [B, T, I] (or [T, I]) → the last layer's hidden states and every layer's final state.
    func callAsFunction(_ x: Tensor, initialState: LSTMState? = nil) -> (output: Tensor, state: LSTMState) {
        lstm(x, layers: layers, initialState: initialState)
    }
}
