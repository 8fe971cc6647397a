import ChatterTensor
import Foundation

/// The S3Gen prompt mel (`chatterbox/models/s3gen/utils/mel.py` `mel_spectrogram`, Matcha/CosyVoice
/// settings; frontends.md §5.1): 24 kHz input, reflect pad (n_fft − hop)/2 = 720 both sides, STFT
/// n_fft = win = 1920, hop 480, periodic Hann, center false; magnitude √(re² + im² + 1e−9); librosa Slaney
/// mel basis (80 bands, 0–8000 Hz); ln(max(x, 1e−5)). Frames T = ⌊L/480⌋.
public enum S3GenMel {
    public static let nFFT = 1920, hop = 480, nMels = 80, sampleRate = 24000

    /// `[80, T]` (the reference's `(1, 80, T)` without the batch; `prompt_feat` is its transpose).
    /// Throws `.signalTooShort` unless L > 720 (reflect padding needs more samples than the pad).
    public static func compute(_ samples: [Float]) throws -> Tensor {
        let pad = (nFFT - hop) / 2
        guard samples.count > pad else {
            throw AudioFrontEndError.signalTooShort(samples: samples.count, minimum: pad + 1, stage: "S3Gen prompt mel")
        }
        let length = samples.count
        var padded = [Float](repeating: 0, count: length + 2 * pad)
        for i in 0..<length { padded[pad + i] = samples[i] }
        for i in 0..<pad {
            padded[pad - 1 - i] = samples[i + 1]
            padded[pad + length + i] = samples[length - 2 - i]
        }
        let frames = 1 + (padded.count - nFFT) / hop
        let bins = nFFT / 2 + 1
        let window = periodicHann(nFFT)
        let plan = RealFFTPlan.shared(nFFT)
        let magnitude = Tensor(zeros: [bins, frames])
        magnitude.withUnsafeMutableFloats { out in
            var frame = [Float](repeating: 0, count: nFFT)
            var spectrum = [Float](repeating: 0, count: 2 * bins)
            for t in 0..<frames {
                for j in 0..<nFFT { frame[j] = padded[t * hop + j] * window[j] }
                frame.withUnsafeBufferPointer { input in
                    spectrum.withUnsafeMutableBufferPointer { s in plan.forward(input.baseAddress!, s.baseAddress!) }
                }
                for k in 0..<bins {
                    let re = spectrum[2 * k], im = spectrum[2 * k + 1]
                    out[k * frames + t] = (re * re + im * im + 1e-9).squareRoot()
                }
            }
        }
        let mel = matmul(basis, magnitude)
        mel.withUnsafeMutableFloats { values in
            for i in values.indices { values[i] = log(max(values[i], 1e-5)) }
        }
        return mel
    }

    /// librosa's Slaney mel basis for these settings, `[80, 961]`.
    public static let basis = Tensor(shape: [nMels, nFFT / 2 + 1],
                                     scalars: MelFilterbank.make(sampleRate: sampleRate, nFFT: nFFT, nMels: nMels, fMin: 0, fMax: 8000))

    /// torch.hann_window(n) (periodic) as torch computes it in float32: 0.5 − 0.5·cos(n · 2π/N).
    static func periodicHann(_ n: Int) -> [Float] {
        let step = Float(2 * Double.pi / Double(n))
        return (0..<n).map { i in 0.5 - 0.5 * cos(Float(i) * step) }
    }
}
