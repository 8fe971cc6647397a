import Foundation

/// torchaudio's windowed-sinc resampler (`torchaudio.functional.resample` / `transforms.Resample`,
/// torchaudio 2.6, method `sinc_interp_hann`), the one `S3Gen.embed_ref` uses for 24 kHz → 16 kHz.
/// It is *not* interchangeable with `resample` (libsoxr): on speech the two differ at ≈35 dB SNR.
public enum SincResampler {
    /// The polyphase kernel `[newPhases][taps]` (row-major) and its half width, exactly as
    /// `_get_sinc_resample_kernel(orig, new, gcd, width, rolloff, "sinc_interp_hann", dtype=None)`:
    /// computed in Float64, stored as Float32.
    public static func kernel(from: Int, to: Int, lowpassFilterWidth: Int = 6, rolloff: Double = 0.99)
        -> (kernel: [Float], phases: Int, taps: Int, width: Int) {
        precondition(from > 0 && to > 0, "sample rates must be positive, got \(from) → \(to)")
        precondition(lowpassFilterWidth > 0, "lowpass filter width must be positive")
        let g = gcd(from, to)
        let o = from / g, n = to / g
        let base = Double(min(o, n)) * rolloff
        let width = Int((Double(lowpassFilterWidth) * Double(o) / base).rounded(.up))
        let taps = 2 * width + o
        let lpw = Double(lowpassFilterWidth)
        let scale = base / Double(o)
        var kernel = [Float](repeating: 0, count: n * taps)
        for j in 0..<n {
            // torch builds −j/n in the default dtype (float32) before adding the float64 tap offsets.
            let phase = Double(Float(-j) / Float(n))
            for k in 0..<taps {
                var t = (phase + Double(k - width) / Double(o)) * base
                t = min(max(t, -lpw), lpw)
                let c = cos(t * Double.pi / lpw / 2)
                let window = c * c
                let u = t * Double.pi
                let sinc = u == 0 ? 1.0 : sin(u) / u
                kernel[j * taps + k] = Float(sinc * (window * scale))
            }
        }
        return (kernel, n, taps, width)
    }

    /// Resamples `samples` from `from` Hz to `to` Hz; the output has `ceil(L · to / from)` samples (reduced
    /// rates). Equal rates return the input unchanged, as torchaudio does. Accumulates in Float32.
    public static func resample(_ samples: [Float], from: Int, to: Int, lowpassFilterWidth: Int = 6,
                                rolloff: Double = 0.99) -> [Float] {
        if from == to { return samples }
        let (kernel, n, taps, width) = kernel(from: from, to: to, lowpassFilterWidth: lowpassFilterWidth, rolloff: rolloff)
        let g = gcd(from, to)
        let o = from / g
        let length = samples.count
        // pad (width, width + o), stride-o correlation per phase; keep ceil(n·L/o).
        let paddedLength = width + length + width + o
        var padded = [Float](repeating: 0, count: paddedLength)
        padded.withUnsafeMutableBufferPointer { p in
            samples.withUnsafeBufferPointer { s in
                if length > 0 { (p.baseAddress! + width).update(from: s.baseAddress!, count: length) }
            }
        }
        let blocks = (paddedLength - taps) / o + 1
        let target = (n * length + o - 1) / o
        let count = min(target, blocks * n)
        var output = [Float](repeating: 0, count: count)
        padded.withUnsafeBufferPointer { x in
            kernel.withUnsafeBufferPointer { k in
                output.withUnsafeMutableBufferPointer { y in
                    for index in 0..<count {
                        let m = index / n, j = index % n
                        let row = k.baseAddress! + j * taps, start = x.baseAddress! + m * o
                        var sum: Float = 0
                        for t in 0..<taps { sum += row[t] * start[t] }
                        y[index] = sum
                    }
                }
            }
        }
        return output
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
