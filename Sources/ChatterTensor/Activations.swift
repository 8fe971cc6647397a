/// Activation functions, matching `torch.nn.functional` in f32. Each has a copying form and an
/// `…InPlace` form for scratch buffers in hot loops.

typealias V16 = SIMD16<Float>

struct SiLUKernel: VectorUnary {
    @inline(__always) func callAsFunction(_ x: V16) -> V16 { x / (1 + VectorMath.exp(-x)) }
}
struct SigmoidKernel: VectorUnary {
    @inline(__always) func callAsFunction(_ x: V16) -> V16 { VectorMath.sigmoid(x) }
}
struct TanhKernel: VectorUnary {
    @inline(__always) func callAsFunction(_ x: V16) -> V16 { VectorMath.tanh(x) }
}
struct ReLUKernel: VectorUnary {
    // Keeps NaN (x < 0 is false for NaN), as torch.relu does.
    @inline(__always) func callAsFunction(_ x: V16) -> V16 { x.replacing(with: 0, where: x .< 0) }
}
struct LeakyReLUKernel: VectorUnary {
    let slope: Float
    @inline(__always) func callAsFunction(_ x: V16) -> V16 { x.replacing(with: x * slope, where: x .< 0) }
}
struct ELUKernel: VectorUnary {
    let alpha: Float
    @inline(__always) func callAsFunction(_ x: V16) -> V16 {
        // expm1 by exp − 1 loses relative accuracy only near 0, where the absolute error stays ~1 ulp of 1.
        x.replacing(with: alpha * (VectorMath.exp(x) - 1), where: x .<= 0)
    }
}
struct GELUKernel: VectorUnary {
    @inline(__always) func callAsFunction(_ x: V16) -> V16 {
        0.5 * x * (1 + VectorMath.erf(x * 0.707_106_781_186_547_524_4))
    }
}
struct GELUTanhKernel: VectorUnary {
    // 0.5·(1 + tanh(u)) = σ(2u): one exp, and no cancellation in 1 + tanh for very negative x.
    @inline(__always) func callAsFunction(_ x: V16) -> V16 {
        let u = 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)
        return x / (1 + VectorMath.exp(-2 * u))
    }
}
struct MishKernel: VectorUnary {
    // tanh(log(1 + e^x)) = n / (n + 2) with n = e^x (e^x + 2): one exp. Above 20, mish(x) = x in f32
    // (and n would overflow).
    @inline(__always) func callAsFunction(_ x: V16) -> V16 {
        let e = VectorMath.exp(x)
        let n = e * (e + 2)
        return (x * n / (n + 2)).replacing(with: x, where: x .> 20)
    }
}

/// x · σ(x) (`F.silu`).
public func silu(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, SiLUKernel()) }
public func siluInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, SiLUKernel()) }

/// 1 / (1 + e^−x).
public func sigmoid(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, SigmoidKernel()) }
public func sigmoidInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, SigmoidKernel()) }

public func tanh(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, TanhKernel()) }
public func tanhInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, TanhKernel()) }

public func relu(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, ReLUKernel()) }
public func reluInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, ReLUKernel()) }

/// x for x ≥ 0, slope·x below (`F.leaky_relu`; HiFT uses 0.1, the flow encoder 0.01).
public func leakyReLU(_ x: Tensor, slope: Float = 0.01) -> Tensor { PointwiseLoop.apply(x, LeakyReLUKernel(slope: slope)) }
public func leakyReLUInPlace(_ x: Tensor, slope: Float = 0.01) { PointwiseLoop.applyInPlace(x, LeakyReLUKernel(slope: slope)) }

/// x for x > 0, α·(eˣ − 1) below (`F.elu`).
public func elu(_ x: Tensor, alpha: Float = 1) -> Tensor { PointwiseLoop.apply(x, ELUKernel(alpha: alpha)) }
public func eluInPlace(_ x: Tensor, alpha: Float = 1) { PointwiseLoop.applyInPlace(x, ELUKernel(alpha: alpha)) }

/// Exact GELU, ½x(1 + erf(x/√2)) (`F.gelu`, approximate="none"; the CFM decoder's feed-forward).
public func gelu(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, GELUKernel()) }
public func geluInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, GELUKernel()) }

/// Tanh GELU, ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`F.gelu(approximate="tanh")`, GPT-2's `gelu_new`).
public func geluTanh(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, GELUTanhKernel()) }
public func geluTanhInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, GELUTanhKernel()) }

/// x · tanh(softplus(x)) (`F.mish`).
public func mish(_ x: Tensor) -> Tensor { PointwiseLoop.apply(x, MishKernel()) }
public func mishInPlace(_ x: Tensor) { PointwiseLoop.applyInPlace(x, MishKernel()) }

/// Snake, x + sin²(αx) / (α + 1e-9), α per channel, on [B, C, T] (or [C, T]). This is HiFT's
/// `Snake` with `alpha_logscale=False`: α is used as stored, and the 1e-9 guard sits inside the
/// division.
public func snake(_ x: Tensor, alpha: Tensor) -> Tensor {
    let result = x.contiguousF32().copy()
    snakeInPlace(result, alpha: alpha)
    return result
}

public func snakeInPlace(_ x: Tensor, alpha: Tensor) {
    precondition(x.rank == 2 || x.rank == 3, "snake expects [B, C, T] or [C, T], got \(x.shape)")
    let channels = x.shape[x.rank - 2], length = x.shape[x.rank - 1]
    precondition(alpha.count == channels, "snake: alpha has \(alpha.count) values for \(channels) channels")
    let alphas = alpha.scalars()
    let rows = x.count / max(length, 1)
    x.withUnsafeMutableFloats { buffer in
        let base = buffer.baseAddress!
        let grain = max(1, PointwiseLoop.parallelGrain / max(length, 1))
        let body: (Range<Int>) -> Void = { range in
            for row in range {
                let a = alphas[row % channels]
                let inverse = 1 / (a + 1e-9)
                let va = V16(repeating: a), vi = V16(repeating: inverse)
                let p = base + row * length
                var i = 0
                while i + 16 <= length {
                    let v = PointwiseLoop.load(p + i)
                    let s = VectorMath.sin(va * v)
                    PointwiseLoop.store(v + vi * (s * s), p + i)
                    i += 16
                }
                if i < length {
                    let v = PointwiseLoop.loadPartial(p + i, length - i)
                    let s = VectorMath.sin(va * v)
                    PointwiseLoop.storePartial(v + vi * (s * s), p + i, length - i)
                }
            }
        }
        if x.count < 2 * PointwiseLoop.parallelGrain { body(0..<rows) } else {
            ThreadPool.shared.parallelFor(rows, minimumChunk: grain, body)
        }
    }
}
