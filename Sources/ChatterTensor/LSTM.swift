import Foundation

/// One layer of a unidirectional `torch.nn.LSTM`, in PyTorch's layout: gate rows ordered input,
/// forget, cell candidate, output (i, f, g, o).
public struct LSTMLayer: Sendable {
    /// `[4H, I]` (`weight_ih_l{k}`).
    public let weightIH: Tensor
    /// `[4H, H]` (`weight_hh_l{k}`).
    public let weightHH: Tensor
    /// `[4H]` each (`bias_ih_l{k}`, `bias_hh_l{k}`); nil for `bias=False`.
    public let biasIH: Tensor?
    public let biasHH: Tensor?

    public var hiddenSize: Int { weightHH.shape[1] }
    public var inputSize: Int { weightIH.shape[1] }

    public init(weightIH: Tensor, weightHH: Tensor, biasIH: Tensor? = nil, biasHH: Tensor? = nil) {
        precondition(weightHH.rank == 2 && weightHH.shape[0] == 4 * weightHH.shape[1],
                     "LSTM weight_hh must be [4H, H], got \(weightHH.shape)")
        let gates = weightHH.shape[0]
        precondition(weightIH.rank == 2 && weightIH.shape[0] == gates, "LSTM weight_ih must be [\(gates), I], got \(weightIH.shape)")
        for bias in [biasIH, biasHH] {
            if let bias { precondition(bias.shape == [gates], "LSTM bias must be [\(gates)], got \(bias.shape)") }
        }
        self.weightIH = weightIH.converted(to: .f32)
        self.weightHH = weightHH.converted(to: .f32)
        self.biasIH = biasIH?.converted(to: .f32)
        self.biasHH = biasHH?.converted(to: .f32)
    }

    /// The `layers` layers of an `nn.LSTM` whose parameters `tensor(name)` returns by their state-dict
    /// names without prefix (`weight_ih_l0`, …).
    public static func stack(layers: Int, bias: Bool = true, _ tensor: (String) throws -> Tensor) rethrows -> [LSTMLayer] {
        try (0..<layers).map { k in
            LSTMLayer(weightIH: try tensor("weight_ih_l\(k)"), weightHH: try tensor("weight_hh_l\(k)"),
                      biasIH: bias ? try tensor("bias_ih_l\(k)") : nil, biasHH: bias ? try tensor("bias_hh_l\(k)") : nil)
        }
    }
}

/// Hidden and cell state of a stacked LSTM: `[layers, B, H]` each (`[layers, H]` for unbatched input).
public struct LSTMState: Sendable {
    public var h: Tensor
    public var c: Tensor
    public init(h: Tensor, c: Tensor) { self.h = h; self.c = c }
}

/// A stacked unidirectional LSTM over `input` `[B, T, I]` (batch first) or `[T, I]`, matching
/// `torch.nn.LSTM(batch_first=True)`. Returns the last layer's hidden states `[B, T, H]` (or `[T, H]`)
/// and the final state of every layer. The initial state defaults to zeros.
///
/// Per layer, the input projection of all time steps is one GEMM. Each step then needs h·W_hhᵀ for a
/// handful of rows (the batch) against the same [4H, H] weights: a skinny product that the GEMV
/// kernel does in one pass over the weights, where sgemm repacked all of W_hh at every step (the
/// VoiceEncoder's 3 × 160 steps spent most of their time packing).
public func lstm(_ input: Tensor, layers: [LSTMLayer], initialState: LSTMState? = nil) -> (output: Tensor, state: LSTMState) {
    precondition(!layers.isEmpty, "lstm needs at least one layer")
    precondition(input.rank == 2 || input.rank == 3, "lstm expects input [B, T, I] or [T, I], got \(input.shape)")
    let batched = input.rank == 3
    let x3 = batched ? input : input.unsqueezed(0)
    let (batch, steps) = (x3.shape[0], x3.shape[1])
    let hidden = layers[0].hiddenSize
    precondition(layers.allSatisfy { $0.hiddenSize == hidden }, "lstm layers must share one hidden size")
    precondition(layers[0].inputSize == x3.shape[2], "lstm: input has \(x3.shape[2]) features, layer 0 expects \(layers[0].inputSize)")
    for k in 1..<max(1, layers.count) {
        precondition(layers[k].inputSize == hidden, "lstm: layer \(k) expects \(layers[k].inputSize) inputs, previous layer gives \(hidden)")
    }
    let stateShape = batched ? [layers.count, batch, hidden] : [layers.count, hidden]
    if let initialState {
        precondition(initialState.h.shape == stateShape && initialState.c.shape == stateShape,
                     "lstm: initial state must be \(stateShape), got h \(initialState.h.shape), c \(initialState.c.shape)")
    }
    let finalH = initialState?.h.copy() ?? Tensor(zeros: stateShape)
    let finalC = initialState?.c.copy() ?? Tensor(zeros: stateShape)
    var layerInput = x3.contiguous()
    let gateWidth = 4 * hidden

    for (k, layer) in layers.enumerated() {
        let features = layerInput.shape[2]
        let gates = Tensor(zeros: [batch * steps, gateWidth])
        let output = Tensor(zeros: [batch, steps, hidden])
        // The previous step's h of every row, gathered contiguous, and its h·W_hhᵀ.
        let previousH = Tensor(zeros: [batch, hidden])
        let recurrent = Tensor(zeros: [batch, gateWidth])
        var bias = [Float](repeating: 0, count: gateWidth)
        for b in [layer.biasIH, layer.biasHH].compactMap({ $0 }) {
            for (i, v) in b.scalars().enumerated() { bias[i] += v }
        }
        layerInput.withUnsafeFloats { xBuffer in
        layer.weightIH.contiguous().withUnsafeFloats { wih in
        gates.withUnsafeMutableFloats { gBuffer in
        output.withUnsafeMutableFloats { outBuffer in
        finalH.withUnsafeMutableFloats { hState in
        finalC.withUnsafeMutableFloats { cState in
            let g = gBuffer.baseAddress!, out = outBuffer.baseAddress!
            let h0 = hState.baseAddress! + k * batch * hidden, c = cState.baseAddress! + k * batch * hidden
            for row in 0..<(batch * steps) { (g + row * gateWidth).update(from: bias, count: gateWidth) }
            GEMMThreading.sgemm(transposeA: false, transposeB: true, m: batch * steps, n: gateWidth, k: features,
                                alpha: 1, a: xBuffer.baseAddress!, lda: features, b: wih.baseAddress!, ldb: features,
                                beta: 1, c: g, ldc: gateWidth)
            for t in 0..<steps {
                // Rows b·T + t of the projection and of the output belong to step t.
                let previous: UnsafePointer<Float> = t == 0 ? UnsafePointer(h0) : UnsafePointer(out + (t - 1) * hidden)
                let previousStride = t == 0 ? hidden : steps * hidden
                previousH.withUnsafeMutableFloats { p in
                    for b in 0..<batch { (p.baseAddress! + b * hidden).update(from: previous + b * previousStride, count: hidden) }
                }
                gemv(previousH, weight: layer.weightHH, into: recurrent)
                recurrent.withUnsafeFloats { rBuffer in
                for b in 0..<batch {
                    let row = g + (b * steps + t) * gateWidth
                    // The step's input projection (with both biases) plus its recurrent product.
                    let hw = rBuffer.baseAddress! + b * gateWidth
                    for j in 0..<gateWidth { row[j] += hw[j] }
                    let cell = c + b * hidden
                    let h = out + (b * steps + t) * hidden
                    for j in 0..<hidden {
                        let inputGate = sigmoid(row[j])
                        let forgetGate = sigmoid(row[hidden + j])
                        let candidate = tanhf(row[2 * hidden + j])
                        let outputGate = sigmoid(row[3 * hidden + j])
                        cell[j] = forgetGate * cell[j] + inputGate * candidate
                        h[j] = outputGate * tanhf(cell[j])
                    }
                }
                }
            }
            if steps > 0 {
                for b in 0..<batch { (h0 + b * hidden).update(from: out + (b * steps + steps - 1) * hidden, count: hidden) }
            }
        }
        }
        }
        }
        }
        }
        layerInput = output
    }
    let output = batched ? layerInput : layerInput.reshaped([steps, hidden])
    return (output, LSTMState(h: finalH, c: finalC))
}

@inline(__always)
private func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
