import Foundation

/// Why a loudness measurement could not be made.
public enum LoudnessError: Error, Equatable, CustomStringConvertible {
    /// BS.1770 gates 400 ms blocks: a shorter signal has no block to measure.
    case tooShort(samples: Int, minimum: Int)
    case invalidRate(Int)

    public var description: String {
        switch self {
        case let .tooShort(samples, minimum):
            "loudness: \(samples) samples are shorter than one 400 ms gating block (\(minimum) samples)"
        case let .invalidRate(rate): "loudness: the sample rate must be positive, got \(rate) Hz"
        }
    }
}

/// ITU-R BS.1770-4 integrated loudness of mono audio, computed as pyloudnorm 0.1.1's
/// `Meter(rate).integrated_loudness` does (Chatterbox-Turbo's `norm_loudness` uses it):
///
/// - K-weighting as two RBJ-cookbook biquads designed at the signal's own rate (high shelf +4 dB at
///   1500 Hz, Q 1/√2; high pass 38 Hz, Q 0.5), run in double (scipy `lfilter`, transposed direct
///   form II) with the result stored back into the float32 signal after each stage, as pyloudnorm's
///   in-place assignment does;
/// - mean squares of 400 ms blocks with 75 % overlap, summed in float32 the way numpy does (pairwise
///   within 8192-element chunks) — so the result matches pyloudnorm's to the last bits, not just 1e-7;
/// - absolute gate −70 LUFS, relative gate −10 LU below the mean of the blocks above it.
///
/// Digital silence (and anything with no block above −70 LUFS) measures −∞, as pyloudnorm returns.
public enum Loudness {
    public static let blockSeconds = 0.4

    /// Integrated loudness in LUFS (−∞ when every block is below the absolute gate). Throws
    /// `.tooShort` for fewer samples than one block (pyloudnorm raises ValueError there).
    public static func integrated(_ samples: [Float], sampleRate: Int) throws -> Double {
        guard sampleRate > 0 else { throw LoudnessError.invalidRate(sampleRate) }
        let rate = Double(sampleRate)
        guard Double(samples.count) >= blockSeconds * rate else {
            throw LoudnessError.tooShort(samples: samples.count, minimum: Int((blockSeconds * rate).rounded(.up)))
        }
        var weighted = samples
        for filter in [Biquad.highShelf(gainDB: 4, q: 1 / 2.0.squareRoot(), frequency: 1500, rate: rate),
                       Biquad.highPass(q: 0.5, frequency: 38, rate: rate)] {
            filter.apply(&weighted)
        }
        // Block bounds exactly as pyloudnorm computes them (float products truncated to Int).
        let overlap = 0.75, step = 1.0 - overlap
        let duration = Double(samples.count) / rate
        let blockCount = Int(((duration - blockSeconds) / (blockSeconds * step)).rounded(.toNearestOrEven)) + 1
        let scale = 1.0 / (blockSeconds * rate)
        var squares = [Float](repeating: 0, count: 0)
        var energies = [Double](repeating: 0, count: blockCount)
        for j in 0..<blockCount {
            let lower = Int(blockSeconds * (Double(j) * step) * rate)
            let upper = min(Int(blockSeconds * (Double(j) * step + 1) * rate), weighted.count)
            squares.removeAll(keepingCapacity: true)
            if lower < upper { for i in lower..<upper { squares.append(weighted[i] * weighted[i]) } }
            energies[j] = scale * Double(numpySum(squares))
        }
        let blockLoudness = energies.map { -0.691 + 10 * log10($0) }
        let absoluteGate = -70.0
        let aboveAbsolute = energies.indices.filter { blockLoudness[$0] >= absoluteGate }
        guard !aboveAbsolute.isEmpty else { return -.infinity }
        let relativeGate = -0.691 + 10 * log10(numpyMean(aboveAbsolute.map { energies[$0] })) - 10
        let gated = energies.indices.filter { blockLoudness[$0] > relativeGate && blockLoudness[$0] > absoluteGate }
        guard !gated.isEmpty else { return -.infinity }
        return -0.691 + 10 * log10(numpyMean(gated.map { energies[$0] }))
    }

    /// Chatterbox-Turbo's `norm_loudness(wav, sr, target_lufs)`: scales the signal so that its
    /// integrated loudness is `targetLUFS`. As upstream, the signal is returned unchanged when the
    /// gain is not finite and positive (silence: −∞ LUFS) or when it cannot be measured (shorter
    /// than 400 ms — upstream catches the exception and prints a warning). The gain is applied in
    /// float32 (`float32 array * Python float` in numpy).
    public static func normalized(_ samples: [Float], sampleRate: Int, targetLUFS: Double = -27) -> [Float] {
        guard let loudness = try? integrated(samples, sampleRate: sampleRate) else { return samples }
        let gain = pow(10.0, (targetLUFS - loudness) / 20.0)
        guard gain.isFinite, gain > 0 else { return samples }
        let gain32 = Float(gain)
        return samples.map { $0 * gain32 }
    }

    /// numpy's `add.reduce` of a contiguous array: pairwise summation within 8192-element buffer
    /// chunks, the chunk sums accumulated left to right.
    static func numpySum<T: BinaryFloatingPoint>(_ values: [T]) -> T {
        values.withUnsafeBufferPointer { buffer in
            var total: T = 0
            var start = 0
            while start < buffer.count {
                let count = min(8192, buffer.count - start)
                total += pairwiseSum(UnsafeBufferPointer(rebasing: buffer[start..<(start + count)]))
                start += count
            }
            return total
        }
    }

    static func numpyMean(_ values: [Double]) -> Double { numpySum(values) / Double(values.count) }

    /// numpy's `pairwise_sum` (8 accumulators up to 128 elements, split in halves above).
    private static func pairwiseSum<T: BinaryFloatingPoint>(_ a: UnsafeBufferPointer<T>) -> T {
        let n = a.count
        if n < 8 {
            var result: T = -0.0
            for value in a { result += value }
            return result
        }
        if n <= 128 {
            var r = (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
            var i = 8
            while i < n - n % 8 {
                r.0 += a[i]; r.1 += a[i + 1]; r.2 += a[i + 2]; r.3 += a[i + 3]
                r.4 += a[i + 4]; r.5 += a[i + 5]; r.6 += a[i + 6]; r.7 += a[i + 7]
                i += 8
            }
            var result = ((r.0 + r.1) + (r.2 + r.3)) + ((r.4 + r.5) + (r.6 + r.7))
            while i < n { result += a[i]; i += 1 }
            return result
        }
        var half = n / 2
        half -= half % 8
        return pairwiseSum(UnsafeBufferPointer(rebasing: a[0..<half])) + pairwiseSum(UnsafeBufferPointer(rebasing: a[half..<n]))
    }
}

/// A second-order IIR section with pyloudnorm's RBJ-cookbook designs, normalised by a0.
struct Biquad {
    let b: (Double, Double, Double)
    let a: (Double, Double)

    static func highShelf(gainDB: Double, q: Double, frequency: Double, rate: Double) -> Biquad {
        let amplitude = pow(10, gainDB / 40), w0 = 2 * Double.pi * (frequency / rate)
        let alpha = sin(w0) / (2 * q), cosW0 = cos(w0), root = amplitude.squareRoot()
        let b0 = amplitude * ((amplitude + 1) + (amplitude - 1) * cosW0 + 2 * root * alpha)
        let b1 = -2 * amplitude * ((amplitude - 1) + (amplitude + 1) * cosW0)
        let b2 = amplitude * ((amplitude + 1) + (amplitude - 1) * cosW0 - 2 * root * alpha)
        let a0 = (amplitude + 1) - (amplitude - 1) * cosW0 + 2 * root * alpha
        let a1 = 2 * ((amplitude - 1) - (amplitude + 1) * cosW0)
        let a2 = (amplitude + 1) - (amplitude - 1) * cosW0 - 2 * root * alpha
        return Biquad(b: (b0 / a0, b1 / a0, b2 / a0), a: (a1 / a0, a2 / a0))
    }

    static func highPass(q: Double, frequency: Double, rate: Double) -> Biquad {
        let w0 = 2 * Double.pi * (frequency / rate)
        let alpha = sin(w0) / (2 * q), cosW0 = cos(w0)
        let b0 = (1 + cosW0) / 2, b1 = -(1 + cosW0), b2 = (1 + cosW0) / 2
        let a0 = 1 + alpha, a1 = -2 * cosW0, a2 = 1 - alpha
        return Biquad(b: (b0 / a0, b1 / a0, b2 / a0), a: (a1 / a0, a2 / a0))
    }

    /// scipy `lfilter` (transposed direct form II, zero initial state) in double, stored as float32.
    func apply(_ signal: inout [Float]) {
        var z0 = 0.0, z1 = 0.0
        for i in signal.indices {
            let x = Double(signal[i])
            let y = z0 + b.0 * x
            z0 = z1 + x * b.1 - y * a.0
            z1 = x * b.2 - y * a.1
            signal[i] = Float(y)
        }
    }
}
