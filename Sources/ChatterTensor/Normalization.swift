import RealModule

/// Normalisation layers in f32, inference only: RMSNorm (Llama), LayerNorm (GPT-2, S3Gen),
/// GroupNorm, BatchNorm (CAMPPlus, running statistics). Statistics are accumulated in f32 across
/// 16 lanes, then in Double across lanes, which keeps rows of thousands of elements within an ulp or
/// two of PyTorch's cascaded sums.
enum NormKernel {
    typealias L = PointwiseLoop

    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n { acc += L.load(p + i); i += 16 }
        if i < n { acc += L.loadPartial(p + i, n - i) }
        var total = 0.0
        for j in 0..<16 { total += Double(acc[j]) }
        return total
    }

    /// Σ (x − c)².
    @inline(__always)
    static func squaredDeviation(_ p: UnsafePointer<Float>, _ n: Int, _ center: Float) -> Double {
        let c = SIMD16<Float>(repeating: center)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n { let d = L.load(p + i) - c; acc += d * d; i += 16 }
        var total = 0.0
        for j in 0..<16 { total += Double(acc[j]) }
        while i < n { let d = Double(p[i] - center); total += d * d; i += 1 }
        return total
    }

    /// Runs `body(row)` for each of `rows` rows of length `n`, in parallel when worth it.
    static func forEachRow(_ rows: Int, length n: Int, _ body: @escaping (Int) -> Void) {
        let run: (Range<Int>) -> Void = { range in for r in range { body(r) } }
        if rows * n < 2 * PointwiseLoop.parallelGrain { run(0..<rows) } else {
            ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, PointwiseLoop.parallelGrain / max(n, 1)), run)
        }
    }

    /// Optional per-element vectors (weights, biases) as arrays of the expected length.
    static func vector(_ t: Tensor?, count: Int, _ what: String) -> [Float]? {
        guard let t else { return nil }
        precondition(t.count == count, "\(what) has \(t.count) values, expected \(count) (shape \(t.shape))")
        return t.scalars()
    }
}

/// Llama's RMSNorm over the last axis: w ⊙ (x · 1/√(mean(x²) + eps)), in f32 as HF computes it.
public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
    let input = x.contiguousF32()
    let result = Tensor(zeros: input.shape)
    rmsNorm(input, weight: weight, eps: eps, into: result)
    return result
}

/// RMSNorm writing into a preallocated contiguous f32 tensor of the same shape (may be `x` itself).
public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float, into result: Tensor) {
    precondition(result.shape == x.shape, "rmsNorm: output shape \(result.shape) differs from input \(x.shape)")
    let n = x.shape.last ?? 1
    let w = NormKernel.vector(weight, count: n, "rmsNorm weight")!
    let rows = n == 0 ? 0 : x.count / n
    x.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            w.withUnsafeBufferPointer { wb in
                let s = src.baseAddress!, d = dst.baseAddress!, wp = wb.baseAddress!
                NormKernel.forEachRow(rows, length: n) { r in
                    let row = s + r * n, out = d + r * n
                    var acc = SIMD16<Float>()
                    var i = 0
                    while i + 16 <= n { let v = PointwiseLoop.load(row + i); acc += v * v; i += 16 }
                    var total = 0.0
                    for j in 0..<16 { total += Double(acc[j]) }
                    while i < n { total += Double(row[i] * row[i]); i += 1 }
                    let meanSquare = Float(total / Double(n))
                    let inverse = 1 / (meanSquare + eps).squareRoot()
                    let vi = SIMD16<Float>(repeating: inverse)
                    i = 0
                    while i + 16 <= n {
                        PointwiseLoop.store(PointwiseLoop.load(wp + i) * (PointwiseLoop.load(row + i) * vi), out + i)
                        i += 16
                    }
                    while i < n { out[i] = wp[i] * (row[i] * inverse); i += 1 }
                }
            }
        }
    }
}

/// LayerNorm with f32 weight and bias writing into a preallocated contiguous f32 tensor of the same
/// shape (GPT-2's decode step: no allocation; `result` may be `x` itself). Same arithmetic as
/// `layerNorm(_:weight:bias:eps:)`.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float, into result: Tensor) {
    precondition(result.shape == x.shape, "layerNorm: output shape \(result.shape) differs from input \(x.shape)")
    let n = x.shape.last ?? 1
    precondition(weight.count == n && bias.count == n && weight.dtype == .f32 && bias.dtype == .f32,
                 "layerNorm weight and bias must be f32 [\(n)], got \(weight.dtype) \(weight.shape), \(bias.dtype) \(bias.shape)")
    let rows = n == 0 ? 0 : x.count / n
    x.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            weight.withUnsafeFloats { wb in
                bias.withUnsafeFloats { bb in
                    let s = src.baseAddress!, d = dst.baseAddress!, w = wb.baseAddress!, b = bb.baseAddress!
                    for r in 0..<rows {
                        let row = s + r * n, out = d + r * n
                        let mean = Float(NormKernel.sum(row, n) / Double(n))
                        let variance = Float(NormKernel.squaredDeviation(row, n, mean) / Double(n))
                        let inverse = 1 / (variance + eps).squareRoot()
                        for i in 0..<n { out[i] = (row[i] - mean) * inverse * w[i] + b[i] }
                    }
                }
            }
        }
    }
}

/// LayerNorm over the last axis: (x − mean) / √(var + eps) · w + b (`F.layer_norm`, biased variance).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    let input = x.contiguousF32()
    let result = Tensor(zeros: input.shape)
    let n = input.shape.last ?? 1
    let w = NormKernel.vector(weight, count: n, "layerNorm weight")
    let b = NormKernel.vector(bias, count: n, "layerNorm bias")
    let rows = n == 0 ? 0 : input.count / n
    input.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            let s = src.baseAddress!, d = dst.baseAddress!
            NormKernel.forEachRow(rows, length: n) { r in
                let row = s + r * n, out = d + r * n
                let mean = Float(NormKernel.sum(row, n) / Double(n))
                let variance = Float(NormKernel.squaredDeviation(row, n, mean) / Double(n))
                let inverse = 1 / (variance + eps).squareRoot()
                for i in 0..<n {
                    var y = (row[i] - mean) * inverse
                    if let w { y *= w[i] }
                    if let b { y += b[i] }
                    out[i] = y
                }
            }
        }
    }
    return result
}

/// GroupNorm on [B, C, *]: channels split in `groups` groups, each normalised over its channels and
/// all positions, then a per-channel affine (`F.group_norm`).
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    precondition(x.rank >= 2, "groupNorm expects [B, C, …], got \(x.shape)")
    let channels = x.shape[1]
    precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels do not split into \(groups) groups")
    let input = x.contiguousF32()
    let result = Tensor(zeros: input.shape)
    let spatial = x.shape[2...].reduce(1, *)
    let perGroup = channels / groups
    let n = perGroup * spatial
    let w = NormKernel.vector(weight, count: channels, "groupNorm weight")
    let b = NormKernel.vector(bias, count: channels, "groupNorm bias")
    input.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            let s = src.baseAddress!, d = dst.baseAddress!
            NormKernel.forEachRow(x.shape[0] * groups, length: n) { g in
                let block = s + g * n, out = d + g * n
                let mean = Float(NormKernel.sum(block, n) / Double(n))
                let variance = Float(NormKernel.squaredDeviation(block, n, mean) / Double(n))
                let inverse = 1 / (variance + eps).squareRoot()
                for c in 0..<perGroup {
                    let channel = (g % groups) * perGroup + c
                    let scale = w?[channel] ?? 1, shift = b?[channel] ?? 0
                    for t in 0..<spatial {
                        let i = c * spatial + t
                        out[i] = (block[i] - mean) * inverse * scale + shift
                    }
                }
            }
        }
    }
    return result
}

/// BatchNorm in inference mode on [B, C] or [B, C, *] with running statistics
/// (`F.batch_norm(training=False)`): y = x · (w/√(var + eps)) + (b − mean · w/√(var + eps)), the
/// folded form PyTorch's CPU kernel uses.
public func batchNorm(_ x: Tensor, runningMean: Tensor, runningVar: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    precondition(x.rank >= 2, "batchNorm expects [B, C, …], got \(x.shape)")
    let channels = x.shape[1]
    let mean = NormKernel.vector(runningMean, count: channels, "batchNorm running mean")!
    let variance = NormKernel.vector(runningVar, count: channels, "batchNorm running var")!
    let w = NormKernel.vector(weight, count: channels, "batchNorm weight")
    let b = NormKernel.vector(bias, count: channels, "batchNorm bias")
    var scale = [Float](repeating: 0, count: channels), shift = scale
    for c in 0..<channels {
        let inverse = 1 / (variance[c] + eps).squareRoot()
        scale[c] = (w?[c] ?? 1) * inverse
        shift[c] = (b?[c] ?? 0) - mean[c] * scale[c]
    }
    let input = x.contiguousF32()
    let result = Tensor(zeros: input.shape)
    let spatial = x.shape[2...].reduce(1, *)
    let rows = x.shape[0] * channels
    input.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            let s = src.baseAddress!, d = dst.baseAddress!
            NormKernel.forEachRow(rows, length: spatial) { r in
                let c = r % channels
                let vs = SIMD16<Float>(repeating: scale[c]), vb = SIMD16<Float>(repeating: shift[c])
                let row = s + r * spatial, out = d + r * spatial
                var i = 0
                while i + 16 <= spatial { PointwiseLoop.store(PointwiseLoop.load(row + i) * vs + vb, out + i); i += 16 }
                while i < spatial { out[i] = row[i] * scale[c] + shift[c]; i += 1 }
            }
        }
    }
    return result
}

/// LayerNorm over the channel axis of [B, C, T] (each time step normalised across its C channels,
/// weight and bias per channel): what `x.transposed(1, 2) → layerNorm → transposed back` computes,
/// without the two transposing copies. Sixteen time steps are normalised at once, one SIMD lane
/// each, walking down the channels. The sums are taken in exactly the order `NormKernel.sum` and
/// `squaredDeviation` take them along a row (16 f32 partial sums over channels c ≡ j mod 16, then
/// Double across j), so the result is bit-identical to the transposing form.
public func layerNormOverChannels(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    precondition(x.rank == 3, "layerNormOverChannels expects [B, C, T], got \(x.shape)")
    let (batch, channels, length) = (x.shape[0], x.shape[1], x.shape[2])
    let w = NormKernel.vector(weight, count: channels, "layerNormOverChannels weight")!
    let b = NormKernel.vector(bias, count: channels, "layerNormOverChannels bias")!
    let input = x.contiguousF32()
    let result = Tensor(zeros: input.shape)
    guard batch > 0, channels > 0, length > 0 else { return result }
    let columnBlocks = (length + 15) / 16
    let fullChannels = channels / 16 * 16
    input.withUnsafeFloats { src in
        result.withUnsafeMutableFloats { dst in
            let s = src.baseAddress!, d = dst.baseAddress!
            NormKernel.forEachRow(batch * columnBlocks, length: 16 * channels) { item in
                let start = (item % columnBlocks) * 16, lanes = min(16, length - start)
                let first = (item / columnBlocks) * channels * length + start
                @inline(__always) func load(_ c: Int) -> SIMD16<Float> {
                    lanes == 16 ? PointwiseLoop.load(s + first + c * length) : PointwiseLoop.loadPartial(s + first + c * length, lanes)
                }
                var total = SIMD16<Double>()
                for j in 0..<min(16, channels) {
                    var partial = SIMD16<Float>()
                    for c in stride(from: j, to: channels, by: 16) { partial += load(c) }
                    total += SIMD16<Double>(partial)
                }
                let mean = SIMD16<Float>(total / Double(channels))
                var squares = SIMD16<Double>()
                for j in 0..<min(16, fullChannels) {
                    var partial = SIMD16<Float>()
                    for c in stride(from: j, to: fullChannels, by: 16) { let deviation = load(c) - mean; partial += deviation * deviation }
                    squares += SIMD16<Double>(partial)
                }
                for c in fullChannels..<channels {
                    let deviation = SIMD16<Double>(load(c) - mean)
                    squares += deviation * deviation
                }
                let variance = SIMD16<Float>(squares / Double(channels))
                let inverse = 1 / (variance + eps).squareRoot()
                for c in 0..<channels {
                    let y = (load(c) - mean) * inverse * w[c] + b[c]
                    if lanes == 16 { PointwiseLoop.store(y, d + first + c * length) } else {
                        PointwiseLoop.storePartial(y, d + first + c * length, lanes)
                    }
                }
            }
        }
    }
    return result
}
