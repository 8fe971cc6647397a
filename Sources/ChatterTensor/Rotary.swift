import RealModule

/// Llama 3.1's rotary frequency rescaling (transformers' `_compute_llama3_parameters`): long
/// wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
public struct Llama3RopeScaling: Sendable, Equatable, Codable {
    public var factor: Float
    public var lowFrequencyFactor: Float
    public var highFrequencyFactor: Float
    public var originalMaxPositionEmbeddings: Int

    public init(factor: Float = 8, lowFrequencyFactor: Float = 1, highFrequencyFactor: Float = 4,
                originalMaxPositionEmbeddings: Int = 8192) {
        self.factor = factor
        self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }
}

/// Rotary position embedding as HF Llama applies it: the "rotate-half" (NeoX) layout, where
/// dimension d pairs with d + D/2 (not interleaved pairs), and cos/sin tables with both halves equal.
///
/// Everything is f32 in the same operation order as transformers, so the inverse frequencies match
/// bit for bit and the tables to an ulp.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    /// The D/2 (scaled) inverse frequencies, `inv_freq` in transformers.
    public let inverseFrequencies: [Float]

    public init(headDim: Int, theta: Float, llama3Scaling: Llama3RopeScaling? = nil) {
        precondition(headDim > 0 && headDim % 2 == 0, "rotary head dimension must be even, got \(headDim)")
        self.headDim = headDim
        var frequencies = (0..<(headDim / 2)).map { k in
            1 / Float.pow(theta, Float(2 * k) / Float(headDim))
        }
        if let s = llama3Scaling {
            let oldContext = Float(s.originalMaxPositionEmbeddings)
            let lowWavelength = oldContext / s.lowFrequencyFactor
            let highWavelength = oldContext / s.highFrequencyFactor
            let twoPi = Float(2 * Double.pi)
            frequencies = frequencies.map { f in
                // torch evaluates `scalar / tensor` as reciprocal(tensor) · scalar; keep that rounding.
                let wavelength = (1 / f) * twoPi
                let kept = wavelength > lowWavelength ? f / s.factor : f
                if wavelength < highWavelength || wavelength > lowWavelength { return kept }
                let smooth = ((1 / wavelength) * oldContext - s.lowFrequencyFactor) / (s.highFrequencyFactor - s.lowFrequencyFactor)
                return (1 - smooth) * kept / s.factor + smooth * kept
            }
        }
        inverseFrequencies = frequencies
    }

    /// cos and sin tables, each [positions.count, headDim] (the two halves repeated, as HF's `emb`).
    public func tables(positions: [Int]) -> (cos: Tensor, sin: Tensor) {
        let half = headDim / 2
        var cosValues = [Float](repeating: 0, count: positions.count * headDim)
        var sinValues = cosValues
        for (row, position) in positions.enumerated() {
            for k in 0..<half {
                let angle = inverseFrequencies[k] * Float(position)
                let c = Float.cos(angle), s = Float.sin(angle)
                cosValues[row * headDim + k] = c
                cosValues[row * headDim + half + k] = c
                sinValues[row * headDim + k] = s
                sinValues[row * headDim + half + k] = s
            }
        }
        return (Tensor(shape: [positions.count, headDim], scalars: cosValues),
                Tensor(shape: [positions.count, headDim], scalars: sinValues))
    }

    public func tables(positions: Range<Int>) -> (cos: Tensor, sin: Tensor) { tables(positions: Array(positions)) }

    /// x rotated, for x of shape [B, H, T, D] whose token t sits at position `offset + t`
    /// (offset = tokens already in the KV cache).
    public func apply(_ x: Tensor, positionOffset offset: Int = 0) -> Tensor {
        let result = x.contiguousF32().copy()
        applyInPlace(result, positionOffset: offset)
        return result
    }

    /// In-place form of `apply(_:positionOffset:)` for a contiguous writable [B, H, T, D] tensor.
    public func applyInPlace(_ x: Tensor, positionOffset offset: Int = 0) {
        precondition(x.rank == 4 && x.shape[3] == headDim, "rotary expects [B, H, T, \(headDim)], got \(x.shape)")
        let t = x.shape[2]
        let (cos, sin) = tables(positions: offset..<(offset + t))
        applyRotaryInPlace(x, cos: cos, sin: sin)
    }
}

/// HF's `q * cos + rotate_half(q) * sin` for q of shape [B, H, T, D] and tables [T, D] or
/// [B, T, D] (per-row positions).
public func applyRotary(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
    let result = x.contiguousF32().copy()
    applyRotaryInPlace(result, cos: cos, sin: sin)
    return result
}

public func applyRotaryInPlace(_ x: Tensor, cos: Tensor, sin: Tensor) {
    precondition(x.rank == 4, "rotary expects [B, H, T, D], got \(x.shape)")
    let (batch, heads, length, dim) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    precondition(cos.shape == sin.shape, "rotary: cos \(cos.shape) and sin \(sin.shape) differ")
    precondition(cos.shape == [length, dim] || cos.shape == [batch, length, dim],
                 "rotary: tables \(cos.shape) do not fit x \(x.shape) (want [T, D] or [B, T, D])")
    let perBatch = cos.rank == 3
    let half = dim / 2
    let c = cos.contiguousF32(), s = sin.contiguousF32()
    c.withUnsafeFloats { cb in
        s.withUnsafeFloats { sb in
            x.withUnsafeMutableFloats { xb in
                let cp = cb.baseAddress!, sp = sb.baseAddress!, xp = xb.baseAddress!
                let rows = batch * heads * length
                let body: (Range<Int>) -> Void = { range in
                    for row in range {
                        let b = row / (heads * length), t = row % length
                        let table = (perBatch ? b * length + t : t) * dim
                        let v = xp + row * dim
                        for d in 0..<half {
                            let x1 = v[d], x2 = v[d + half]
                            v[d] = x1 * cp[table + d] + (-x2) * sp[table + d]
                            v[d + half] = x2 * cp[table + d + half] + x1 * sp[table + d + half]
                        }
                    }
                }
                if rows * dim < 2 * PointwiseLoop.parallelGrain { body(0..<rows) } else {
                    ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, PointwiseLoop.parallelGrain / dim), body)
                }
            }
        }
    }
}
