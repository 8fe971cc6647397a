import Foundation

/// The identity "encoder": 16-bit little-endian PCM, mono, no header, for piping into a player
/// (`aplay -f S16_LE -r 24000`, `ffplay -f s16le -ar 24000 -ac 1 -`). Its MIME type is
/// `application/octet-stream` because the registered `audio/L16` is big-endian.
public final class RawPCMEncoder: StreamingAudioEncoder {
    public let sampleRate: Int
    public let mimeType = "application/octet-stream"
    public let fileExtension = "pcm"
    private var isFinalized = false

    public init(sampleRate: Int = 24_000) throws {
        guard sampleRate > 0 else {
            throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "raw PCM encoder", supported: [])
        }
        self.sampleRate = sampleRate
    }

    public func encode(_ samples: [Float]) throws -> Data {
        guard !isFinalized else { throw AudioEncodingError.finalized(encoder: "raw PCM encoder") }
        var bytes = Data(count: 2 * samples.count)
        bytes.withUnsafeMutableBytes { raw in
            for (i, x) in samples.enumerated() {
                raw.storeBytes(of: EncoderInput.int16(x).littleEndian, toByteOffset: 2 * i, as: Int16.self)
            }
        }
        return bytes
    }

    /// 16-bit input passes through unchanged (no float round trip to rescale it).
    public func encode(_ samples: [Int16]) throws -> Data {
        guard !isFinalized else { throw AudioEncodingError.finalized(encoder: "raw PCM encoder") }
        var bytes = Data(count: 2 * samples.count)
        bytes.withUnsafeMutableBytes { raw in
            for (i, x) in samples.enumerated() { raw.storeBytes(of: x.littleEndian, toByteOffset: 2 * i, as: Int16.self) }
        }
        return bytes
    }

    public func finalize() throws -> Data {
        isFinalized = true
        return Data()
    }

    public func reset() throws { isFinalized = false }
}
