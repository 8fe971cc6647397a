import ChatterTensor
import Foundation

/// Kaldi log-mel filterbank features exactly as `torchaudio.compliance.kaldi.fbank(wav[None],
/// num_mel_bins: 80)` with every other option at its default (torchaudio 2.6): 25 ms frames every
/// 10 ms with snip edges, dither 0, per-frame DC removal, pre-emphasis 0.97, Povey window, zero-pad to
/// the next power of two, power spectrum, Kaldi mel bank (1127·ln(1 + f/700), 20 Hz to Nyquist),
/// ln(max(E, float32 ε)). The waveform is used as is (no ×32768). CAMPPlus's input (frontends.md §4.1).
public enum KaldiFbank {
    /// `[frames, numMelBins]` with frames = 1 + (L − frameLength) / frameShift (0 when L < frameLength,
    /// as torchaudio returns an empty tensor). `subtractMean` removes the per-bin mean over frames
    /// (CAMPPlus `extract_feature`'s CMN; not part of `fbank` itself).
    public static func compute(_ samples: [Float], sampleRate: Int = 16000, numMelBins: Int = 80,
                               subtractMean: Bool = false) -> Tensor {
        precondition(sampleRate > 0 && numMelBins > 3, "fbank needs a positive rate and more than 3 mel bins")
        let frameLength = Int(Double(sampleRate) * 0.025), frameShift = Int(Double(sampleRate) * 0.010)
        var nFFT = 1
        while nFFT < frameLength { nFFT *= 2 }
        let frames = samples.count < frameLength ? 0 : 1 + (samples.count - frameLength) / frameShift
        let bins = nFFT / 2
        let bank = melBank(numMelBins: numMelBins, nFFT: nFFT, sampleRate: sampleRate)
        let window = poveyWindow(frameLength)
        let plan = RealFFTPlan.shared(nFFT)
        var output = [Float](repeating: 0, count: frames * numMelBins)
        let preemphasis: Float = 0.97
        let epsilon = Float.ulpOfOne
        var frame = [Float](repeating: 0, count: nFFT)
        var spectrum = [Float](repeating: 0, count: 2 * (nFFT / 2 + 1))
        var power = [Float](repeating: 0, count: bins)
        for f in 0..<frames {
            let start = f * frameShift
            var sum: Float = 0
            for i in 0..<frameLength { sum += samples[start + i] }
            let mean = sum / Float(frameLength)
            var previous = samples[start] - mean
            for i in 0..<frameLength {
                let x = samples[start + i] - mean
                frame[i] = (x - preemphasis * previous) * window[i]
                previous = x
            }
            for i in frameLength..<nFFT { frame[i] = 0 }
            frame.withUnsafeBufferPointer { input in
                spectrum.withUnsafeMutableBufferPointer { out in plan.forward(input.baseAddress!, out.baseAddress!) }
            }
            // The Nyquist bin has weight 0 in every band.
            for k in 0..<bins { power[k] = spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1] }
            for b in 0..<numMelBins {
                var energy: Float = 0
                let row = b * bins
                for k in 0..<bins where bank[row + k] != 0 { energy += power[k] * bank[row + k] }
                output[f * numMelBins + b] = log(max(energy, epsilon))
            }
        }
        if subtractMean && frames > 0 {
            for b in 0..<numMelBins {
                var sum: Float = 0
                for f in 0..<frames { sum += output[f * numMelBins + b] }
                let mean = sum / Float(frames)
                for f in 0..<frames { output[f * numMelBins + b] -= mean }
            }
        }
        return Tensor(shape: [frames, numMelBins], scalars: output)
    }

    /// torchaudio's `get_mel_banks` (no VTLN), in float32 as torch computes it: `[numMelBins, nFFT/2]`.
    public static func melBank(numMelBins: Int, nFFT: Int, sampleRate: Int, lowFrequency: Double = 20,
                               highFrequency: Double = 0) -> [Float] {
        let nyquist = 0.5 * Double(sampleRate)
        let high = highFrequency <= 0 ? highFrequency + nyquist : highFrequency
        let melLow = 1127.0 * Foundation.log(1.0 + lowFrequency / 700.0)
        let melHigh = 1127.0 * Foundation.log(1.0 + high / 700.0)
        let delta = Float((melHigh - melLow) / Double(numMelBins + 1))
        let low = Float(melLow)
        let binWidth = Float(Double(sampleRate) / Double(nFFT))
        let bins = nFFT / 2
        let mel = (0..<bins).map { k -> Float in 1127 * Foundation.log(1 + binWidth * Float(k) / 700) }
        var bank = [Float](repeating: 0, count: numMelBins * bins)
        for b in 0..<numMelBins {
            let left = low + Float(b) * delta
            let center = low + (Float(b) + 1) * delta
            let right = low + (Float(b) + 2) * delta
            for k in 0..<bins {
                let up = (mel[k] - left) / (center - left)
                let down = (right - mel[k]) / (right - center)
                bank[b * bins + k] = max(0, min(up, down))
            }
        }
        return bank
    }

    /// Povey window: symmetric Hann^0.85 (torch.hann_window(n, periodic=False).pow(0.85)).
    static func poveyWindow(_ n: Int) -> [Float] {
        (0..<n).map { i in
            let hann = Float(0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(n - 1)))
            return Float(pow(Double(hann), 0.85))
        }
    }
}
