import ChatterTensor
import Foundation

/// Perth's audio processor (`perth_net_implicit/audio_processor.py` with `hparams.yaml`): a 32 kHz
/// STFT (n_fft 2048, hop 320, periodic Hann, centred with reflect padding, onesided), split into a
/// normalised dB magnitude and a phase, and its inverse (frontends.md §8.2).
public struct PerthAudioProcessor: Sendable {
    public static let sampleRate = 32_000
    public static let nFFT = 2048
    public static let hop = 320
    public static let bins = nFFT / 2 + 1
    /// `stft_magnitude_min`: magnitudes are floored here (−180 dB), and the normalisation maps it to 0.
    static let minLevelDB: Float = -180
    /// Headroom above 0 dB of the normalisation: m = (dB + 180) / 195.
    static let headroomDB: Float = 15

    /// The analysis and synthesis window (the checkpoint's `ap.spectrogram.window`, a periodic Hann).
    public let window: Tensor

    public init(window: Tensor) {
        precondition(window.shape == [Self.nFFT], "Perth window must have \(Self.nFFT) samples, got \(window.shape)")
        self.window = window.contiguous()
    }

    /// A periodic Hann window, `torch.hann_window(2048)`, computed here.
    public init() {
        let n = Self.nFFT
        let values = (0..<n).map { i in Float(0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(n))) }
        self.init(window: Tensor(shape: [n], scalars: values))
    }

    /// Frames of the analysis of `count` samples: 1 + ⌊count / 320⌋.
    public static func frameCount(samples count: Int) -> Int { 1 + count / hop }

    /// The shortest signal the centred reflect-padded STFT accepts (more than n_fft / 2 samples).
    public static let minimumSamples = nFFT / 2 + 1

    /// A normalised magnitude and a phase, both `[1025, frames]` row-major (bin-major).
    public struct MagPhase: Sendable {
        public var magnitude: [Float]
        public var phase: [Float]
        public let frames: Int
    }

    /// `signal_to_magphase`: |X| floored at 1e−9 in dB, normalised to (dB + 180) / 195; φ = atan2(Im, Re).
    /// The signal must have at least `minimumSamples` samples (the reflect padding needs them).
    public func analyse(_ signal: [Float]) -> MagPhase {
        precondition(signal.count >= Self.minimumSamples,
                     "Perth analysis needs at least \(Self.minimumSamples) samples at 32 kHz, got \(signal.count)")
        let spectrum = stft(Tensor(shape: [signal.count], scalars: signal), nFFT: Self.nFFT, hopLength: Self.hop,
                            window: window, center: true, padMode: .reflect)
        let frames = spectrum.shape[1]
        let total = Self.bins * frames
        var magnitude = [Float](repeating: 0, count: total)
        var phase = [Float](repeating: 0, count: total)
        let floor: Float = 1e-9
        let scale = 1 / (-Self.minLevelDB + Self.headroomDB)
        spectrum.withUnsafeFloats { x in
            for i in 0..<total {
                let re = x[2 * i], im = x[2 * i + 1]
                let absolute = (re * re + im * im).squareRoot()
                magnitude[i] = (20 * log10(max(absolute, floor)) - Self.minLevelDB) * scale
                phase[i] = atan2(im, re)
            }
        }
        return MagPhase(magnitude: magnitude, phase: phase, frames: frames)
    }

    /// `magphase_to_signal`: dB = m·195 − 180, |X| = 10^min(dB/20, 10), X = |X|·e^{iφ}, then the
    /// centred iSTFT with the same window: 320·(frames − 1) samples.
    public func synthesise(_ magPhase: MagPhase) -> [Float] {
        let frames = magPhase.frames
        let total = Self.bins * frames
        let spectrum = Tensor(zeros: [Self.bins, frames, 2])
        let range = -Self.minLevelDB + Self.headroomDB
        spectrum.withUnsafeMutableFloats { x in
            for i in 0..<total {
                let dB = magPhase.magnitude[i] * range + Self.minLevelDB
                let absolute = pow(10, min(dB / 20, 10))
                let phi = magPhase.phase[i]
                x[2 * i] = absolute * cos(phi)
                x[2 * i + 1] = absolute * sin(phi)
            }
        }
        return istft(spectrum, nFFT: Self.nFFT, hopLength: Self.hop, window: window, center: true).scalars()
    }
}
