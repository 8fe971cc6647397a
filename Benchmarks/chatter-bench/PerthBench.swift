import ChatterModels
import Foundation

/// Perth watermarking cost per second of 24 kHz audio (the rate Chatterbox calls it at) with the
/// real checkpoint: `apply` (soxr HQ up, STFT, encoder, iSTFT, soxr HQ down), the length-preserving
/// variant, and `detect` (polyphase up, STFT, three decoder branches).
struct PerthBench {
    let checkpoint: String
    let repetitions: Int
    let seconds: Int

    func run() throws -> [String: Any] {
        let perth = try PerthWatermarker(checkpointPath: checkpoint)
        let rate = 24_000
        // Speech-like test signal: a 140 Hz harmonic voice with a 4 Hz syllable envelope, deterministic.
        let wav: [Float] = (0..<(seconds * rate)).map { i in
            let t = Double(i) / Double(rate)
            let envelope = 0.5 + 0.5 * sin(2 * Double.pi * 4 * t)
            var voice = 0.0
            for h in 1...12 { voice += sin(2 * Double.pi * 140 * Double(h) * t + Double(h)) / Double(h) }
            return Float(0.15 * envelope * voice)
        }
        var cases: [[String: Any]] = []
        let contenders: [(String, () throws -> Void)] = [
            ("apply", { _ = try perth.apply(wav, sampleRate: rate) }),
            ("apply_preserving_length", { _ = try perth.applyPreservingLength(wav, sampleRate: rate) }),
            ("detect", { _ = try perth.detect(wav, sampleRate: rate, round: false) }),
        ]
        for (name, body) in contenders {
            try body()  // warm-up
            var times: [Double] = []
            for _ in 0..<repetitions {
                let start = now()
                try body()
                times.append(Double(now() - start) / 1e6)
            }
            let ms = median(times)
            let perSecond = ms / Double(seconds)
            note("perth \(name): \(rounded(ms, 1)) ms for \(seconds) s of 24 kHz audio = \(rounded(perSecond, 2)) ms per second (real-time factor \(rounded(perSecond / 1000, 4)))")
            cases.append(["name": name, "audio_seconds": seconds, "ms": rounded(ms, 3), "ms_per_audio_second": rounded(perSecond, 3)])
        }
        return [
            "method": "PerthWatermarker with perth_net_250000.pth.tar on \(seconds) s of a synthetic 24 kHz voice-like signal; median of \(repetitions) after one warm-up",
            "cases": cases,
        ]
    }
}
