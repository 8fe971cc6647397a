import Foundation
import Synchronization

// Complex values are interleaved (re, im) Float pairs everywhere in this file, and a complex tensor
// is an f32 tensor whose last axis has size 2 (the layout of `torch.view_as_real`).

/// A precomputed discrete Fourier transform of one length.
///
/// Smooth lengths (prime factors up to 13) run a mixed-radix decimation-in-time transform with
/// hand-written radix 2, 3, 4 and 5 butterflies and a generic one for 7, 11 and 13. Lengths with a
/// larger prime factor run Bluestein's chirp-z algorithm over a power-of-two transform, so the cost
/// stays O(n log n) for every length. Twiddles are computed in Double and rounded once, which keeps
/// the error near float rounding (≈ log n ulps) instead of accumulating recurrence drift.
///
/// Plans are immutable, so one plan serves any number of threads; `FFTPlan.shared(count)` caches them.
public final class FFTPlan: Sendable {
    public let count: Int

    private struct Stage: Sendable {
        let radix: Int
        /// Length of each of the `radix` sub-transforms this stage combines.
        let span: Int
    }

    private let stages: [Stage]
    /// e^{-2πij/n} and its conjugate for j in 0..<n, interleaved.
    private let forwardTwiddles: [Float]
    private let inverseTwiddles: [Float]
    private let bluestein: Bluestein?

    /// Largest prime handled by a direct butterfly; its O(p²) cost per group beats Bluestein's
    /// three padded transforms only for small p.
    private static let largestDirectPrime = 13

    private static let cache = PlanCache<FFTPlan>()

    /// The cached plan for `count`, built on first use.
    public static func shared(_ count: Int) -> FFTPlan { cache.plan(count, build: FFTPlan.init(count:)) }

    public init(count: Int) {
        precondition(count >= 1, "FFT length must be at least 1, got \(count)")
        self.count = count
        let radices = FFTPlan.factorize(count)
        if let largest = radices.max(), largest > FFTPlan.largestDirectPrime {
            stages = []
            forwardTwiddles = []
            inverseTwiddles = []
            bluestein = Bluestein(count: count)
            return
        }
        var span = count
        stages = radices.map { radix in
            span /= radix
            return Stage(radix: radix, span: span)
        }
        var forward = [Float](repeating: 0, count: 2 * count)
        var inverse = forward
        for j in 0..<count {
            let angle = -2.0 * Double.pi * Double(j) / Double(count)
            forward[2 * j] = Float(cos(angle))
            forward[2 * j + 1] = Float(sin(angle))
            inverse[2 * j] = forward[2 * j]
            inverse[2 * j + 1] = -forward[2 * j + 1]
        }
        forwardTwiddles = forward
        inverseTwiddles = inverse
        bluestein = nil
    }

    /// Radices in the order the stages apply them, 4s first (fewest multiplies per point).
    private static func factorize(_ n: Int) -> [Int] {
        var n = n
        var radices: [Int] = []
        while n % 4 == 0 { radices.append(4); n /= 4 }
        while n % 2 == 0 { radices.append(2); n /= 2 }
        var p = 3
        while n > 1 {
            while n % p == 0 { radices.append(p); n /= p }
            p += 2
            if p * p > n && n > 1 { radices.append(n); n = 1 }
        }
        return radices
    }

    /// The unnormalised DFT `output[k] = Σ_j input[j]·e^{∓2πijk/n}` (minus sign forward, plus
    /// inverse). `input` and `output` hold `count` complex values each and must not overlap.
    public func transform(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, inverse: Bool = false) {
        if let bluestein {
            bluestein.transform(input, output, inverse: inverse)
            return
        }
        if count == 1 {
            output[0] = input[0]
            output[1] = input[1]
            return
        }
        (inverse ? inverseTwiddles : forwardTwiddles).withUnsafeBufferPointer { twiddles in
            stages.withUnsafeBufferPointer { stages in
                FFTPlan.work(output, input, stride: 1, stages: stages, stage: 0,
                             twiddles: twiddles.baseAddress!, count: count, inverse: inverse)
            }
        }
    }

    /// One level of the recursive decimation in time: transforms the `radix` decimated
    /// subsequences into consecutive blocks of `out`, then merges them with butterflies.
    private static func work(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, stride: Int,
                             stages: UnsafeBufferPointer<Stage>, stage: Int,
                             twiddles: UnsafePointer<Float>, count: Int, inverse: Bool) {
        let radix = stages[stage].radix, span = stages[stage].span
        if span == 1 {
            var source = input
            for q in 0..<radix {
                out[2 * q] = source[0]
                out[2 * q + 1] = source[1]
                source += 2 * stride
            }
        } else {
            for q in 0..<radix {
                work(out + 2 * q * span, input + 2 * q * stride, stride: stride * radix,
                     stages: stages, stage: stage + 1, twiddles: twiddles, count: count, inverse: inverse)
            }
        }
        switch radix {
        case 2: butterfly2(out, stride: stride, span: span, twiddles: twiddles)
        case 3: butterfly3(out, stride: stride, span: span, twiddles: twiddles, inverse: inverse)
        case 4: butterfly4(out, stride: stride, span: span, twiddles: twiddles, inverse: inverse)
        case 5: butterfly5(out, stride: stride, span: span, twiddles: twiddles, inverse: inverse)
        default: butterflyGeneric(out, stride: stride, span: span, radix: radix, twiddles: twiddles, count: count)
        }
    }

    @inline(__always)
    private static func multiply(_ ar: Float, _ ai: Float, _ w: UnsafePointer<Float>) -> (Float, Float) {
        (ar * w[0] - ai * w[1], ar * w[1] + ai * w[0])
    }

    private static func butterfly2(_ out: UnsafeMutablePointer<Float>, stride: Int, span m: Int, twiddles: UnsafePointer<Float>) {
        for k in 0..<m {
            let a = out + 2 * k, b = out + 2 * (k + m)
            let (tr, ti) = multiply(b[0], b[1], twiddles + 2 * k * stride)
            b[0] = a[0] - tr; b[1] = a[1] - ti
            a[0] += tr; a[1] += ti
        }
    }

    private static func butterfly3(_ out: UnsafeMutablePointer<Float>, stride: Int, span m: Int,
                                   twiddles: UnsafePointer<Float>, inverse: Bool) {
        // Imaginary part of e^{∓2πi/3}.
        let sin3 = Float((inverse ? 1.0 : -1.0) * sin(2.0 * Double.pi / 3.0))
        for k in 0..<m {
            let f0 = out + 2 * k, f1 = out + 2 * (k + m), f2 = out + 2 * (k + 2 * m)
            let (s1r, s1i) = multiply(f1[0], f1[1], twiddles + 2 * k * stride)
            let (s2r, s2i) = multiply(f2[0], f2[1], twiddles + 4 * k * stride)
            let s3r = s1r + s2r, s3i = s1i + s2i
            let s0r = (s1r - s2r) * sin3, s0i = (s1i - s2i) * sin3
            let mr = f0[0] - 0.5 * s3r, mi = f0[1] - 0.5 * s3i
            f0[0] += s3r; f0[1] += s3i
            f2[0] = mr + s0i; f2[1] = mi - s0r
            f1[0] = mr - s0i; f1[1] = mi + s0r
        }
    }

    private static func butterfly4(_ out: UnsafeMutablePointer<Float>, stride: Int, span m: Int,
                                   twiddles: UnsafePointer<Float>, inverse: Bool) {
        for k in 0..<m {
            let f0 = out + 2 * k, f1 = out + 2 * (k + m), f2 = out + 2 * (k + 2 * m), f3 = out + 2 * (k + 3 * m)
            let (s0r, s0i) = multiply(f1[0], f1[1], twiddles + 2 * k * stride)
            let (s1r, s1i) = multiply(f2[0], f2[1], twiddles + 4 * k * stride)
            let (s2r, s2i) = multiply(f3[0], f3[1], twiddles + 6 * k * stride)
            let s5r = f0[0] - s1r, s5i = f0[1] - s1i
            let ar = f0[0] + s1r, ai = f0[1] + s1i
            let s3r = s0r + s2r, s3i = s0i + s2i
            let s4r = s0r - s2r, s4i = s0i - s2i
            f2[0] = ar - s3r; f2[1] = ai - s3i
            f0[0] = ar + s3r; f0[1] = ai + s3i
            if inverse {
                f1[0] = s5r - s4i; f1[1] = s5i + s4r
                f3[0] = s5r + s4i; f3[1] = s5i - s4r
            } else {
                f1[0] = s5r + s4i; f1[1] = s5i - s4r
                f3[0] = s5r - s4i; f3[1] = s5i + s4r
            }
        }
    }

    private static func butterfly5(_ out: UnsafeMutablePointer<Float>, stride: Int, span m: Int,
                                   twiddles: UnsafePointer<Float>, inverse: Bool) {
        let sign = inverse ? 1.0 : -1.0
        let yar = Float(cos(2.0 * Double.pi / 5.0)), yai = Float(sign * sin(2.0 * Double.pi / 5.0))
        let ybr = Float(cos(4.0 * Double.pi / 5.0)), ybi = Float(sign * sin(4.0 * Double.pi / 5.0))
        for u in 0..<m {
            let f0 = out + 2 * u, f1 = out + 2 * (u + m), f2 = out + 2 * (u + 2 * m)
            let f3 = out + 2 * (u + 3 * m), f4 = out + 2 * (u + 4 * m)
            let s0r = f0[0], s0i = f0[1]
            let (s1r, s1i) = multiply(f1[0], f1[1], twiddles + 2 * u * stride)
            let (s2r, s2i) = multiply(f2[0], f2[1], twiddles + 4 * u * stride)
            let (s3r, s3i) = multiply(f3[0], f3[1], twiddles + 6 * u * stride)
            let (s4r, s4i) = multiply(f4[0], f4[1], twiddles + 8 * u * stride)
            let s7r = s1r + s4r, s7i = s1i + s4i
            let s10r = s1r - s4r, s10i = s1i - s4i
            let s8r = s2r + s3r, s8i = s2i + s3i
            let s9r = s2r - s3r, s9i = s2i - s3i
            f0[0] = s0r + s7r + s8r
            f0[1] = s0i + s7i + s8i
            let s5r = s0r + s7r * yar + s8r * ybr
            let s5i = s0i + s7i * yar + s8i * ybr
            let s6r = s10i * yai + s9i * ybi
            let s6i = -(s10r * yai) - s9r * ybi
            f1[0] = s5r - s6r; f1[1] = s5i - s6i
            f4[0] = s5r + s6r; f4[1] = s5i + s6i
            let s11r = s0r + s7r * ybr + s8r * yar
            let s11i = s0i + s7i * ybr + s8i * yar
            let s12r = -(s10i * ybi) + s9i * yai
            let s12i = s10r * ybi - s9r * yai
            f2[0] = s11r + s12r; f2[1] = s11i + s12i
            f3[0] = s11r - s12r; f3[1] = s11i - s12i
        }
    }

    private static func butterflyGeneric(_ out: UnsafeMutablePointer<Float>, stride: Int, span m: Int, radix p: Int,
                                         twiddles: UnsafePointer<Float>, count: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * p) { scratch in
            for u in 0..<m {
                for q in 0..<p {
                    scratch[2 * q] = out[2 * (u + q * m)]
                    scratch[2 * q + 1] = out[2 * (u + q * m) + 1]
                }
                for q1 in 0..<p {
                    let k = u + q1 * m
                    var accR = scratch[0], accI = scratch[1]
                    var index = 0
                    for q in 1..<p {
                        index += stride * k
                        if index >= count { index %= count }
                        let w = twiddles + 2 * index
                        accR += scratch[2 * q] * w[0] - scratch[2 * q + 1] * w[1]
                        accI += scratch[2 * q] * w[1] + scratch[2 * q + 1] * w[0]
                    }
                    out[2 * k] = accR
                    out[2 * k + 1] = accI
                }
            }
        }
    }
}

/// Bluestein's algorithm: with the chirp c_k = e^{-iπk²/n}, the DFT is X_k = c_k·Σ_j (x_j c_j)·c̄_{k−j},
/// a convolution evaluated with power-of-two transforms of length ≥ 2n−1.
private final class Bluestein: Sendable {
    let count: Int
    let paddedCount: Int
    let inner: FFTPlan
    /// c_k for k in 0..<n, interleaved.
    let chirp: [Float]
    /// The forward transform of the convolution kernel c̄_{|k|}, pre-divided by the padded length
    /// so the inner inverse transform needs no separate scaling pass.
    let kernelSpectrum: [Float]

    init(count n: Int) {
        count = n
        var m = 1
        while m < 2 * n - 1 { m <<= 1 }
        paddedCount = m
        let inner = FFTPlan.shared(m)
        self.inner = inner
        var chirp = [Float](repeating: 0, count: 2 * n)
        var kernel = [Float](repeating: 0, count: 2 * m)
        for k in 0..<n {
            // k² mod 2n keeps the angle small so Double evaluates it exactly enough.
            let angle = -Double.pi * Double((k * k) % (2 * n)) / Double(n)
            let c = Float(cos(angle)), s = Float(sin(angle))
            chirp[2 * k] = c
            chirp[2 * k + 1] = s
            kernel[2 * k] = c
            kernel[2 * k + 1] = -s
            if k > 0 {
                kernel[2 * (m - k)] = c
                kernel[2 * (m - k) + 1] = -s
            }
        }
        self.chirp = chirp
        var spectrum = [Float](repeating: 0, count: 2 * m)
        kernel.withUnsafeBufferPointer { k in
            spectrum.withUnsafeMutableBufferPointer { s in inner.transform(k.baseAddress!, s.baseAddress!) }
        }
        let scale = 1 / Float(m)
        kernelSpectrum = spectrum.map { $0 * scale }
    }

    /// The inverse transform is conj(DFT(conj x)); the conjugations fold into the chirp products.
    func transform(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, inverse: Bool) {
        let n = count, m = paddedCount
        let sign: Float = inverse ? -1 : 1
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * m) { buffer in
            let a = buffer.baseAddress!, spectrum = a + 2 * m
            chirp.withUnsafeBufferPointer { c in
                for k in 0..<n {
                    let xr = input[2 * k], xi = sign * input[2 * k + 1]
                    a[2 * k] = xr * c[2 * k] - xi * c[2 * k + 1]
                    a[2 * k + 1] = xr * c[2 * k + 1] + xi * c[2 * k]
                }
            }
            (a + 2 * n).initialize(repeating: 0, count: 2 * (m - n))
            inner.transform(a, spectrum)
            kernelSpectrum.withUnsafeBufferPointer { b in
                for k in 0..<m {
                    let sr = spectrum[2 * k], si = spectrum[2 * k + 1]
                    spectrum[2 * k] = sr * b[2 * k] - si * b[2 * k + 1]
                    spectrum[2 * k + 1] = sr * b[2 * k + 1] + si * b[2 * k]
                }
            }
            inner.transform(spectrum, a, inverse: true)
            chirp.withUnsafeBufferPointer { c in
                for k in 0..<n {
                    let yr = a[2 * k], yi = a[2 * k + 1]
                    output[2 * k] = yr * c[2 * k] - yi * c[2 * k + 1]
                    output[2 * k + 1] = sign * (yr * c[2 * k + 1] + yi * c[2 * k])
                }
            }
        }
    }
}

/// A real-input transform of length n producing the n/2+1 non-negative-frequency bins, and back.
///
/// Even lengths pack the signal into an n/2-point complex transform (x_{2j} + i·x_{2j+1}) and untangle
/// the two interleaved spectra afterwards, halving the work; odd lengths run the full complex plan.
public final class RealFFTPlan: Sendable {
    public let count: Int
    /// Number of complex bins: count / 2 + 1.
    public var binCount: Int { count / 2 + 1 }
    private let complexPlan: FFTPlan
    /// e^{-2πik/n} for k in 0...n/2 (even lengths only).
    private let untangle: [Float]

    private static let cache = PlanCache<RealFFTPlan>()

    /// The cached plan for `count`, built on first use.
    public static func shared(_ count: Int) -> RealFFTPlan { cache.plan(count, build: RealFFTPlan.init(count:)) }

    public init(count: Int) {
        precondition(count >= 1, "FFT length must be at least 1, got \(count)")
        self.count = count
        if count % 2 == 0 {
            complexPlan = FFTPlan.shared(count / 2)
            var w = [Float](repeating: 0, count: 2 * (count / 2 + 1))
            for k in 0...(count / 2) {
                let angle = -2.0 * Double.pi * Double(k) / Double(count)
                w[2 * k] = Float(cos(angle))
                w[2 * k + 1] = Float(sin(angle))
            }
            untangle = w
        } else {
            complexPlan = FFTPlan.shared(count)
            untangle = []
        }
    }

    /// `output` (binCount complex values) = the unnormalised DFT of the `count` reals in `input`.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        let n = count
        if n % 2 == 1 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * n) { buffer in
                let z = buffer.baseAddress!, spectrum = z + 2 * n
                for j in 0..<n { z[2 * j] = input[j]; z[2 * j + 1] = 0 }
                complexPlan.transform(z, spectrum)
                output.update(from: spectrum, count: 2 * binCount)
            }
            return
        }
        let h = n / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * h) { buffer in
            let z = buffer.baseAddress!
            // The packed input is the real signal read as h complex values.
            complexPlan.transform(input, z)
            untangle.withUnsafeBufferPointer { w in
                for k in 0...h {
                    let a = k % h, b = (h - k) % h
                    let zr = z[2 * a], zi = z[2 * a + 1]
                    let cr = z[2 * b], ci = -z[2 * b + 1]
                    let er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci)
                    // (Z_k − conj Z_{h−k}) / 2i
                    let or = 0.5 * (zi - ci), oi = -0.5 * (zr - cr)
                    let wr = w[2 * k], wi = w[2 * k + 1]
                    output[2 * k] = er + (or * wr - oi * wi)
                    output[2 * k + 1] = ei + (or * wi + oi * wr)
                }
            }
        }
    }

    /// `output` (`count` reals) = the normalised inverse (`torch.fft.irfft`) of the binCount complex
    /// values in `input`, times `scale`. As in torch, the imaginary parts of the zero-frequency (and,
    /// for even lengths, Nyquist) bins are ignored: a real signal cannot carry them.
    public func inverse(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, scale: Float = 1) {
        let n = count
        let factor = scale / Float(n)
        if n % 2 == 1 {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * n) { buffer in
                let spectrum = buffer.baseAddress!, z = spectrum + 2 * n
                spectrum[0] = input[0]
                spectrum[1] = 0
                for k in 1..<binCount {
                    spectrum[2 * k] = input[2 * k]
                    spectrum[2 * k + 1] = input[2 * k + 1]
                    spectrum[2 * (n - k)] = input[2 * k]
                    spectrum[2 * (n - k) + 1] = -input[2 * k + 1]
                }
                complexPlan.transform(spectrum, z, inverse: true)
                for j in 0..<n { output[j] = z[2 * j] * factor }
            }
            return
        }
        let h = n / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * h) { buffer in
            let z = buffer.baseAddress!
            untangle.withUnsafeBufferPointer { w in
                for k in 0..<h {
                    let xr = input[2 * k], xi = k == 0 ? 0 : input[2 * k + 1]
                    let mirrored = h - k
                    let yr = input[2 * mirrored], yi = mirrored == h ? 0 : -input[2 * mirrored + 1]
                    let er = xr + yr, ei = xi + yi
                    // (X_k − conj X_{h−k})·conj(W^k); the 1/2 of both halves folds into `factor`.
                    let dr = xr - yr, di = xi - yi
                    let wr = w[2 * k], wi = -w[2 * k + 1]
                    let or = dr * wr - di * wi, oi = dr * wi + di * wr
                    // Z_k = E_k + i·O_k
                    z[2 * k] = er - oi
                    z[2 * k + 1] = ei + or
                }
            }
            // z holds twice the packed spectrum, so its unnormalised h-point inverse is n·x.
            complexPlan.transform(UnsafePointer(z), output, inverse: true)
            for j in 0..<n { output[j] *= factor }
        }
    }
}

// MARK: - Tensor operations

/// The discrete Fourier transform of each row of `x` (shape [..., n, 2], complex as trailing pairs),
/// along axis −2. Forward is unnormalised and inverse divides by n, as `torch.fft.fft` / `ifft`.
public func fft(_ x: Tensor, inverse: Bool = false) -> Tensor {
    precondition(x.rank >= 2 && x.shape[x.rank - 1] == 2, "fft expects a complex tensor [..., n, 2], got \(x.shape)")
    let n = x.shape[x.rank - 2]
    precondition(n >= 1, "fft of an empty axis")
    let input = x.contiguous()
    let output = Tensor(zeros: x.shape)
    let rows = x.count / (2 * n)
    let plan = FFTPlan.shared(n)
    let scale = inverse ? 1 / Float(n) : 1
    input.withUnsafeFloats { src in
        output.withUnsafeMutableFloats { dst in
            let source = src.baseAddress!, destination = dst.baseAddress!
            ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, 8192 / n)) { range in
                for row in range {
                    let out = destination + 2 * n * row
                    plan.transform(source + 2 * n * row, out, inverse: inverse)
                    if inverse { for j in 0..<(2 * n) { out[j] *= scale } }
                }
            }
        }
    }
    return output
}

/// The n/2+1 non-negative-frequency bins of the DFT of each real row of `x` ([..., n] → [..., n/2+1, 2]),
/// as `torch.fft.rfft`.
public func rfft(_ x: Tensor) -> Tensor {
    precondition(x.rank >= 1 && x.shape[x.rank - 1] >= 1, "rfft expects a real tensor [..., n] with n ≥ 1, got \(x.shape)")
    let n = x.shape[x.rank - 1]
    let plan = RealFFTPlan.shared(n)
    let bins = plan.binCount
    let input = x.contiguous()
    let output = Tensor(zeros: Array(x.shape.dropLast()) + [bins, 2])
    let rows = x.count / n
    input.withUnsafeFloats { src in
        output.withUnsafeMutableFloats { dst in
            let source = src.baseAddress!, destination = dst.baseAddress!
            ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, 8192 / n)) { range in
                for row in range { plan.forward(source + n * row, destination + 2 * bins * row) }
            }
        }
    }
    return output
}

/// The real signals of length `length` (default 2·(bins−1)) whose one-sided spectra are the rows of `x`
/// ([..., bins, 2] → [..., length]), as `torch.fft.irfft`: extra bins are dropped, missing ones are zero.
public func irfft(_ x: Tensor, length: Int? = nil) -> Tensor {
    precondition(x.rank >= 2 && x.shape[x.rank - 1] == 2, "irfft expects a complex tensor [..., bins, 2], got \(x.shape)")
    let bins = x.shape[x.rank - 2]
    let n = length ?? 2 * (bins - 1)
    precondition(n >= 1, "irfft output length must be at least 1 (bins \(bins), length \(String(describing: length)))")
    let plan = RealFFTPlan.shared(n)
    let needed = plan.binCount
    let input = x.contiguous()
    let output = Tensor(zeros: Array(x.shape.dropLast(2)) + [n])
    let rows = x.count / (2 * max(bins, 1))
    input.withUnsafeFloats { src in
        output.withUnsafeMutableFloats { dst in
            let source = src.baseAddress!, destination = dst.baseAddress!
            ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, 8192 / n)) { range in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * needed) { spectrum in
                    let s = spectrum.baseAddress!
                    for row in range {
                        let copied = min(bins, needed)
                        s.update(from: source + 2 * bins * row, count: 2 * copied)
                        (s + 2 * copied).initialize(repeating: 0, count: 2 * (needed - copied))
                        plan.inverse(s, destination + n * row)
                    }
                }
            }
        }
    }
    return output
}

/// Plans by length, shared across threads. A plan is built outside the lock (a Bluestein plan
/// builds, and caches, its inner plan); if two threads race, the first one stored wins.
final class PlanCache<Plan: Sendable>: Sendable {
    private let plans = Mutex<[Int: Plan]>([:])

    func plan(_ count: Int, build: (Int) -> Plan) -> Plan {
        if let plan = plans.withLock({ $0[count] }) { return plan }
        let plan = build(count)
        return plans.withLock { plans in
            if let existing = plans[count] { return existing }
            plans[count] = plan
            return plan
        }
    }
}
