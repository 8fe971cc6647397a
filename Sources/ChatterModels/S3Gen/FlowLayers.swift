import ChatterTensor

// Helpers shared by the flow encoder and the CFM estimator (their layers are the vocabulary in `Layers/`).

/// Zero padding on the time axis of [B, C, T].
func flowPadTime(_ x: Tensor, left: Int, right: Int) -> Tensor {
    var parts: [Tensor] = []
    if left > 0 { parts.append(Tensor(zeros: [x.shape[0], x.shape[1], left])) }
    parts.append(x)
    if right > 0 { parts.append(Tensor(zeros: [x.shape[0], x.shape[1], right])) }
    return parts.count == 1 ? x : concatenate(parts, axis: 2)
}
