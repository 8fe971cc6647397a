import Foundation

/// Mel filterbanks as `librosa.filters.mel` builds them (librosa 0.11; the Slaney mel scale unless
/// `htk`, and Slaney area normalisation unless `normalize` is false), computed in Double and
/// returned row-major [nMels, nFFT/2 + 1]. The VoiceEncoder (40 bands at 16 kHz) and the S3Gen
/// prompt mel (80 bands at 24 kHz, n_fft 1920) use it; Whisper's filters ship as data instead.
public enum MelFilterbank {
    public static func make(sampleRate: Int, nFFT: Int, nMels: Int, fMin: Double = 0, fMax: Double? = nil,
                            htk: Bool = false, normalize: Bool = true) -> [Float] {
        let bins = nFFT / 2 + 1
        let top = fMax ?? Double(sampleRate) / 2
        let fftFrequencies = (0..<bins).map { Double($0) * Double(sampleRate) / Double(nFFT) }
        let melMin = hzToMel(fMin, htk: htk), melMax = hzToMel(top, htk: htk)
        let melPoints = (0..<(nMels + 2)).map { melMin + (melMax - melMin) * Double($0) / Double(nMels + 1) }
        let hzPoints = melPoints.map { melToHz($0, htk: htk) }
        var weights = [Float](repeating: 0, count: nMels * bins)
        for m in 0..<nMels {
            let lower = hzPoints[m], center = hzPoints[m + 1], upper = hzPoints[m + 2]
            let scale = normalize ? 2 / (upper - lower) : 1
            for k in 0..<bins {
                let rising = (fftFrequencies[k] - lower) / (center - lower)
                let falling = (upper - fftFrequencies[k]) / (upper - center)
                weights[m * bins + k] = Float(max(0, min(rising, falling)) * scale)
            }
        }
        return weights
    }

    /// librosa.hz_to_mel: linear below 1 kHz and logarithmic above (Slaney), or HTK's formula.
    public static func hzToMel(_ hz: Double, htk: Bool = false) -> Double {
        if htk { return 2595 * log10(1 + hz / 700) }
        let linearStep = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / linearStep
        let logStep = log(6.4) / 27
        return hz >= minLogHz ? minLogMel + log(hz / minLogHz) / logStep : hz / linearStep
    }

    public static func melToHz(_ mel: Double, htk: Bool = false) -> Double {
        if htk { return 700 * (pow(10, mel / 2595) - 1) }
        let linearStep = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / linearStep
        let logStep = log(6.4) / 27
        return mel >= minLogMel ? minLogHz * exp(logStep * (mel - minLogMel)) : mel * linearStep
    }
}
