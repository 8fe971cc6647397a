import RealModule

/// Transcendental functions on `SIMD16<Float>`, so that softmax, SiLU, GELU, Mish and Snake run as
/// vector loops instead of one libm call per element (the CFM decoder alone evaluates billions of
/// exps per second of audio).
///
/// Accuracy targets are f32 parity with PyTorch (whose CPU kernels use Sleef at ~1 ulp): a few ulp
/// here. No FMA is assumed: the default build targets baseline x86-64, where a fused multiply-add
/// would be emulated in software.
enum VectorMath {
    typealias V = SIMD16<Float>

    /// e^x, Cephes-style: x = n·ln2 + r with |r| ≤ ln2/2, degree-6 polynomial for e^r, then a
    /// scale by 2^n built from exponent bits. Relative error ≤ 2 ulp over the normal range;
    /// underflows to subnormals and 0 (so `exp(-inf) == 0`), overflows to +inf, propagates NaN.
    @inline(__always)
    static func exp(_ input: V) -> V {
        // Clamping keeps n within [-150, 128] so that each half of the split scale below stays a
        // normal power of two; outside that range the true result is 0 or inf anyway.
        let x = clamp(input, -104, 89)
        // Adding 1.5·2^23 rounds x·log2(e) to the nearest integer and leaves it in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        // Cody–Waite: ln2 split in a short head (n·head is exact) and a tail.
        var r = x - n * 0.693_359_375
        r = r - n * -2.121_944_4e-4
        let r2 = r * r
        var p = V(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * r2 + r + 1
        // 2^n as two factors 2^(n/2)·2^(n − n/2), each with a normal exponent.
        let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let half = bits &>> 1
        let rest = bits &- half
        let scaleA = unsafeBitCast((half &+ 127) &<< 23, to: V.self)
        let scaleB = unsafeBitCast((rest &+ 127) &<< 23, to: V.self)
        let result = y * scaleA * scaleB
        return result.replacing(with: input, where: input .!= input)
    }

    /// x limited to [low, high], NaN passed through. Written with compares and selects because the
    /// standard library's `clamped` / `pointwiseMin` lower to per-lane scalar code (~35× slower).
    @inline(__always)
    static func clamp(_ x: V, _ low: Float, _ high: Float) -> V {
        x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    }

    /// |x| lane-wise (clears the sign bit).
    @inline(__always)
    static func magnitude(_ x: V) -> V {
        unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: V.self)
    }

    /// 1 / (1 + e^−x).
    @inline(__always)
    static func sigmoid(_ x: V) -> V { 1 / (1 + exp(-x)) }

    /// tanh via 1 − 2/(e^{2x} + 1) for |x| ≥ 0.625 and an odd polynomial below, where the
    /// exponential form would lose relative accuracy to cancellation.
    @inline(__always)
    static func tanh(_ x: V) -> V {
        let a = magnitude(x)
        let large = 1 - 2 / (exp(2 * a) + 1)
        // Cephes tanhf polynomial, valid for |x| < 0.625.
        let z = x * x
        var p = V(repeating: -5.704_988_727_45e-3)
        p = p * z + 2.063_908_879_54e-2
        p = p * z - 5.373_971_555_31e-2
        p = p * z + 1.333_144_220_36e-1
        p = p * z - 3.333_328_194_22e-1
        let small = x + x * z * p
        let withSign = large.replacing(with: -large, where: x .< 0)
        return withSign.replacing(with: small, where: a .< 0.625)
    }

    /// erf via Eigen's rational approximation on [-4, 4] (outside, erf is ±1 in f32); absolute error
    /// below 4e-7.
    @inline(__always)
    static func erf(_ input: V) -> V {
        let x = clamp(input, -4, 4)
        let x2 = x * x
        var p = V(repeating: -2.726_142_258_013_06e-10)
        p = p * x2 + 2.770_681_424_959_02e-08
        p = p * x2 - 2.101_024_020_825_08e-06
        p = p * x2 - 5.692_506_394_623_46e-05
        p = p * x2 - 7.349_906_303_268_55e-04
        p = p * x2 - 2.954_599_808_540_25e-03
        p = p * x2 - 1.609_603_332_624_15e-02
        p = p * x
        var q = V(repeating: -1.456_607_184_649_96e-05)
        q = q * x2 - 2.133_740_552_789_05e-04
        q = q * x2 - 1.682_826_974_382_03e-03
        q = q * x2 - 7.373_329_167_204_68e-03
        q = q * x2 - 1.426_473_905_141_89e-02
        return (p / q).replacing(with: input, where: input .!= input)
    }

    /// Arguments beyond this magnitude go to libm: the three-part π/2 reduction below stays exact
    /// only while the quadrant count has few bits.
    static let sinReductionLimit: Float = 8192

    /// sin x by reduction to [-π/4, π/4] (x = j·π/2 + r) and Cephes' sinf/cosf polynomials.
    @inline(__always)
    static func sin(_ x: V) -> V {
        if any(magnitude(x) .> sinReductionLimit) {
            var out = V()
            for i in 0..<16 { out[i] = Float.sin(x[i]) }
            return out
        }
        let magic: Float = 12_582_912
        let shifted = x * 0.636_619_772_367_581_34 + magic
        let j = shifted - magic
        var r = x - j * 1.570_312_5
        r = r - j * 4.837_512_969_970_703_125e-4
        r = r - j * 7.549_789_954_891_882_16e-8
        let z = r * r
        var s = V(repeating: -1.951_529_589_1e-4)
        s = s * z + 8.332_160_873_6e-3
        s = s * z - 1.666_665_461_1e-1
        let sinR = r + r * z * s
        var c = V(repeating: 2.443_315_711_809_948e-5)
        c = c * z - 1.388_731_625_493_765e-3
        c = c * z + 4.166_664_568_298_827e-2
        let cosR = 1 - 0.5 * z + z * z * c
        // Quadrant j mod 4 from the low bits of `shifted`: odd → cos, bit 1 → negate. Integer-vector
        // compares lower to per-lane code, so the odd test is a float compare on 0.5 / 1.0 built from
        // the bit, and the negation an xor of the sign bit.
        let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self)
        let oddAsFloat = unsafeBitCast(((bits & 1) &<< 23) | 0x3F00_0000, to: V.self)
        let result = sinR.replacing(with: cosR, where: oddAsFloat .> 0.75)
        return unsafeBitCast(unsafeBitCast(result, to: SIMD16<UInt32>.self) ^ ((bits & 2) &<< 30), to: V.self)
    }
}

extension Float {
    /// Applies a vector function to one scalar (for loop tails and scalar call sites).
    @inline(__always)
    static func viaVector(_ x: Float, _ f: (SIMD16<Float>) -> SIMD16<Float>) -> Float {
        f(SIMD16(repeating: x))[0]
    }
}
