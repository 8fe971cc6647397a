import CSoxr
import Foundation

/// The resampling quality. Only what upstream uses is offered.
public enum ResampleQuality: Sendable {
    /// libsoxr's HQ recipe (`SOXR_HQ` = 20-bit precision, ≈120 dB stop-band, linear phase), as
    /// python-soxr 0.5 calls it one-shot (`soxr_quality_spec(SOXR_HQ, 0)`, float32 in and out, one
    /// thread) and as librosa's default `res_type="soxr_hq"` uses it.
    case hq
}

/// Why a resampling request could not be served.
public enum ResampleError: Error, CustomStringConvertible, Equatable {
    case invalidRate(from: Int, to: Int)
    /// libsoxr reported an error (its message).
    case soxr(String)

    public var description: String {
        switch self {
        case let .invalidRate(from, to): return "resample: sample rates must be positive, got \(from) → \(to) Hz"
        case let .soxr(message): return "resample: libsoxr failed: \(message)"
        }
    }
}

/// librosa's output length for a resample: `ceil(L · to / from)` computed as librosa does (float ratio).
@inline(__always)
func librosaLength(_ count: Int, from: Int, to: Int) -> Int {
    Int((Double(count) * (Double(to) / Double(from))).rounded(.up))
}

/// Resamples mono audio like `librosa.resample(y, orig_sr: from, target_sr: to, res_type="soxr_hq")`:
/// libsoxr one-shot with the HQ recipe (delay-compensated, so sample k of the output sits at time
/// k/to), then zero-padded or trimmed at the end to `ceil(L · to / from)` samples (librosa's
/// `fix_length`). Equal rates return the input untouched, as librosa does.
public func resample(_ samples: [Float], from: Int, to: Int, quality: ResampleQuality = .hq) throws -> [Float] {
    guard from > 0, to > 0 else { throw ResampleError.invalidRate(from: from, to: to) }
    if from == to || samples.isEmpty { return samples }
    let target = librosaLength(samples.count, from: from, to: to)
    // python-soxr sizes its output buffer as ilen·out/in + 1 and keeps what soxr produced.
    let capacity = Int(Double(samples.count) * Double(to) / Double(from)) + 1
    var output = [Float](repeating: 0, count: max(capacity, target))
    var produced = 0
    var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
    var qualitySpec: soxr_quality_spec_t
    switch quality {
    case .hq: qualitySpec = soxr_quality_spec(UInt(SOXR_HQ), 0)
    }
    var runtime = soxr_runtime_spec(1)
    let error: soxr_error_t? = samples.withUnsafeBufferPointer { input in
        output.withUnsafeMutableBufferPointer { out in
            soxr_oneshot(Double(from), Double(to), 1, input.baseAddress, samples.count, nil,
                         out.baseAddress, capacity, &produced, &io, &qualitySpec, &runtime)
        }
    }
    if let error { throw ResampleError.soxr(String(cString: error)) }
    // fix_length: zeros past what soxr produced, then cut to librosa's length.
    for i in produced..<output.count { output[i] = 0 }
    output.removeSubrange(target..<output.count)
    return output
}

/// Resamples mono audio like `librosa.resample(..., res_type="polyphase")`, i.e.
/// `scipy.signal.resample_poly(x, up, down)` with up/down = to/from reduced by their gcd: an FIR
/// `firwin(2·10·max(up, down) + 1, 1/max(up, down), window=("kaiser", 5.0)) · up` applied to the
/// zero-stuffed signal with zero padding and the group delay removed, output `ceil(L · up / down)`
/// samples (then librosa's `fix_length` to `ceil(L · to / from)`, the same number). Computed in
/// double precision as scipy does, returned as float32 as librosa does.
public func resamplePolyphase(_ samples: [Float], from: Int, to: Int) throws -> [Float] {
    guard from > 0, to > 0 else { throw ResampleError.invalidRate(from: from, to: to) }
    if from == to || samples.isEmpty { return samples }
    let divisor = gcd(from, to)
    let up = to / divisor, down = from / divisor
    let filter = polyphaseFilter(up: up, down: down)
    let halfLength = (filter.count - 1) / 2
    let count = samples.count
    let outCount = (count * up + down - 1) / down
    let input = samples.map(Double.init)
    var output = [Float](repeating: 0, count: librosaLength(count, from: from, to: to))
    // y[m] = Σ_n x[n] · h[m·down + halfLength − n·up], h zero outside [0, 2·halfLength].
    for m in 0..<min(outCount, output.count) {
        let centre = m * down + halfLength
        let nLow = max(0, (centre - 2 * halfLength + up - 1) / up), nHigh = min(count - 1, centre / up)
        guard nLow <= nHigh else { continue }
        var sum = 0.0
        for n in nLow...nHigh { sum += input[n] * filter[centre - n * up] }
        output[m] = Float(sum)
    }
    return output
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

/// scipy's `firwin(2·half + 1, 1/max, window=("kaiser", 5.0))` (scaled to unit DC gain) times `up`.
func polyphaseFilter(up: Int, down: Int) -> [Double] {
    let maxRate = max(up, down)
    let half = 10 * maxRate, taps = 2 * half + 1
    let cutoff = 1.0 / Double(maxRate)
    let beta = 5.0
    var h = [Double](repeating: 0, count: taps)
    for n in 0..<taps {
        let m = Double(n - half)
        let x = cutoff * m
        let sinc = x == 0 ? 1.0 : sin(Double.pi * x) / (Double.pi * x)
        let r = 2.0 * Double(n) / Double(taps - 1) - 1.0
        let window = besselI0(beta * (max(0, 1 - r * r)).squareRoot()) / besselI0(beta)
        h[n] = cutoff * sinc * window
    }
    let sum = h.reduce(0, +)
    return h.map { $0 / sum * Double(up) }
}

/// The modified Bessel function of the first kind, order 0 (power series; exact to double rounding
/// for the arguments Kaiser windows use).
func besselI0(_ x: Double) -> Double {
    var term = 1.0, sum = 1.0, k = 1.0
    let quarter = x * x / 4
    while term > sum * 1e-17 {
        term *= quarter / (k * k)
        sum += term
        k += 1
    }
    return sum
}
