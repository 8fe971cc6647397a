import CSonic
import Foundation

/// Plays speech faster or slower without changing its pitch (libsonic, made for speech: it cuts or
/// repeats whole pitch periods). Streaming: samples in, the time-scaled samples ready so far out;
/// `finish()` flushes the rest. Speed 1 passes samples through untouched.
public final class SpeechRateChanger {
    /// The speeds OpenAI's speech API accepts.
    public static let speeds: ClosedRange<Float> = 0.25...4.0
    public let speed: Float
    private var stream: sonicStream?

    public init(speed: Float, sampleRate: Int = 24_000) throws {
        guard speed.isFinite, Self.speeds.contains(speed) else { throw AudioEncodingError.unsupportedSpeed(speed) }
        guard sampleRate > 0 else {
            throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "speech-rate changer", supported: [])
        }
        self.speed = speed
        if speed != 1 {
            stream = sonicCreateStream(Int32(sampleRate), 1)
            guard stream != nil else { throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "libsonic", supported: []) }
            sonicSetSpeed(stream, speed)
        }
    }

    deinit { if let stream { sonicDestroyStream(stream) } }

    public func process(_ samples: [Float]) -> [Float] {
        guard let stream else { return samples }
        if !samples.isEmpty {
            var input = samples
            _ = input.withUnsafeMutableBufferPointer { sonicWriteFloatToStream(stream, $0.baseAddress, Int32($0.count)) }
        }
        return drain()
    }

    public func finish() -> [Float] {
        guard let stream else { return [] }
        sonicFlushStream(stream)
        return drain()
    }

    private func drain() -> [Float] {
        guard let stream else { return [] }
        var out: [Float] = []
        var buffer = [Float](repeating: 0, count: 4096)
        while true {
            let read = buffer.withUnsafeMutableBufferPointer { sonicReadFloatFromStream(stream, $0.baseAddress, Int32($0.count)) }
            if read <= 0 { break }
            out += buffer[0..<Int(read)]
        }
        return out
    }
}
