import Foundation

/// The 44-byte header of a 16-bit mono PCM WAV that is streamed before its length is known. The RIFF
/// and data sizes hold 0xFFFFFFFF, the largest value the fields can state, which players and ffmpeg
/// read as "until the end of the stream" (0 would tell strict readers the file is empty).
enum StreamingWAVHeader {
    static let unknownLength = UInt32.max

    static func bytes(sampleRate: Int, channels: Int = 1) -> Data {
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
}
