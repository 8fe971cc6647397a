/// Folds a weight-norm parametrisation (`torch.nn.utils.parametrizations.weight_norm`, dim 0) into a
/// plain weight: `W[a] = g[a] · v[a] / ‖v[a]‖₂`, the norm taken over every axis but the first.
///
/// For a `Conv1d` weight `[out, in, k]` axis 0 is the output channel; for a `ConvTranspose1d` weight
/// `[in, out, k]` it is the *input* channel — the formula is the same, only the meaning differs.
/// The norm accumulates in Double so the result is the correctly rounded f32 of the exact value.
public func foldWeightNorm(magnitude g: Tensor, direction v: Tensor) -> Tensor {
    precondition(v.rank >= 1 && g.count == v.shape[0],
                 "weight norm: magnitude has \(g.count) elements, direction \(v.shape) needs \(v.rank >= 1 ? v.shape[0] : 0)")
    let magnitudes = g.scalars()
    let direction = v.scalars()
    let rows = v.shape[0]
    let rowLength = rows == 0 ? 0 : direction.count / rows
    var folded = [Float](repeating: 0, count: direction.count)
    for row in 0..<rows {
        let start = row * rowLength
        var sumOfSquares = 0.0
        for i in start..<(start + rowLength) { sumOfSquares += Double(direction[i]) * Double(direction[i]) }
        let scale = Double(magnitudes[row]) / sumOfSquares.squareRoot()
        for i in start..<(start + rowLength) { folded[i] = Float(Double(direction[i]) * scale) }
    }
    return Tensor(shape: v.shape, scalars: folded)
}
