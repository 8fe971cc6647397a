import Foundation

/// A 16-bit mono PCM WAV streamed before its length is known: a 44-byte header whose RIFF and data
/// sizes hold 0xFFFFFFFF, the largest value the fields can state, which players and ffmpeg read as
/// "until the end of the stream" (0 would tell strict readers the file is empty); then the PCM.
/// (Files use `WAVFile.write`, whose header has the exact sizes.)
public final class StreamingWAVEncoder: StreamingAudioEncoder {
    public let sampleRate: Int
    public let mimeType = AudioFormat.wav.mimeType
    public let fileExtension = AudioFormat.wav.fileExtension
    private let pcm: RawPCMEncoder
    private var headerSent = false

    public init(sampleRate: Int = 24_000) throws {
        pcm = try RawPCMEncoder(sampleRate: sampleRate)
        self.sampleRate = sampleRate
    }

    public static let unknownLength = UInt32.max

    /// The header of a stream of unknown length.
    public static func header(sampleRate: Int, channels: Int = 1) -> Data {
        var header = Data()
        func append(_ text: String) { header.append(contentsOf: Array(text.utf8)) }
        func append32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        let bytesPerSample = 2
        append("RIFF"); append32(unknownLength); append("WAVE")
        append("fmt "); append32(16)
        append16(1)  // integer PCM
        append16(UInt16(channels))
        append32(UInt32(sampleRate))
        append32(UInt32(sampleRate * channels * bytesPerSample))
        append16(UInt16(channels * bytesPerSample))
        append16(16)
        append("data"); append32(unknownLength)
        return header
    }

    private func preamble() -> Data {
        defer { headerSent = true }
        return headerSent ? Data() : Self.header(sampleRate: sampleRate)
    }

    public func encode(_ samples: [Float]) throws -> Data {
        let body = try pcm.encode(samples)
        return preamble() + body
    }

    public func encode(_ samples: [Int16]) throws -> Data {
        let body = try pcm.encode(samples)
        return preamble() + body
    }

    /// A stream given no samples still gets its header: an empty WAV.
    public func finalize() throws -> Data {
        let tail = try pcm.finalize()
        return preamble() + tail
    }

    public func reset() throws {
        try pcm.reset()
        headerSent = false
    }
}
