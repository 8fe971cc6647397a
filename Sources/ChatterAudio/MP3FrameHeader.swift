import Foundation

/// The 4-byte header of an MPEG-1/2/2.5 Layer III frame: enough to find frame boundaries in an MP3
/// byte stream (the HLS segmenter cuts segments there) and to know each frame's duration.
public struct MP3FrameHeader: Sendable, Equatable {
    public enum Version: Sendable, Equatable { case mpeg1, mpeg2, mpeg25 }

    public let version: Version
    public let bitrate: Int
    public let sampleRate: Int
    public let hasPadding: Bool
    public let isMono: Bool

    /// 1152 samples per frame for MPEG-1, 576 for the low-sample-rate extensions.
    public var samplesPerFrame: Int { version == .mpeg1 ? 1152 : 576 }
    /// Bytes in the frame, header included.
    public var frameLength: Int { samplesPerFrame / 8 * bitrate / sampleRate + (hasPadding ? 1 : 0) }

    /// Layer III bit rates (b/s) by header index, for MPEG-1 and for MPEG-2/2.5.
    static let mpeg1Bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320].map { $0 * 1000 }
    static let mpeg2Bitrates = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160].map { $0 * 1000 }

    /// The constant bit rates a Layer III stream at `sampleRate` can use.
    public static func bitrates(sampleRate: Int) -> [Int] {
        Array((sampleRate >= 32_000 ? mpeg1Bitrates : mpeg2Bitrates).dropFirst())
    }

    /// Parses the header at the start of `bytes`; nil if it is not a Layer III frame header.
    public init?(_ bytes: some Collection<UInt8>) {
        let b = Array(bytes.prefix(4))
        guard b.count == 4, b[0] == 0xFF, b[1] & 0xE0 == 0xE0 else { return nil }
        let versionBits = (b[1] >> 3) & 3, layerBits = (b[1] >> 1) & 3
        let bitrateIndex = Int(b[2] >> 4), rateIndex = Int((b[2] >> 2) & 3)
        guard layerBits == 1, versionBits != 1, bitrateIndex != 0, bitrateIndex != 15, rateIndex != 3 else { return nil }
        version = versionBits == 3 ? .mpeg1 : (versionBits == 2 ? .mpeg2 : .mpeg25)
        let baseRate = [44_100, 48_000, 32_000][rateIndex]
        sampleRate = version == .mpeg1 ? baseRate : (version == .mpeg2 ? baseRate / 2 : baseRate / 4)
        bitrate = (version == .mpeg1 ? Self.mpeg1Bitrates : Self.mpeg2Bitrates)[bitrateIndex]
        hasPadding = b[2] & 2 != 0
        isMono = b[3] >> 6 == 3
    }

    /// Splits `bytes` into whole frames from its start; returns the frames and how many bytes they
    /// cover (a trailing partial frame is left for the caller to complete). Nil if the bytes at a frame
    /// boundary are not a frame header.
    public static func splitFrames(_ bytes: Data) -> (frames: [Data], consumed: Int)? {
        var frames: [Data] = []
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= 4 {
            guard let header = MP3FrameHeader(bytes[offset..<(offset + 4)]) else { return nil }
            let end = offset + header.frameLength
            guard end <= bytes.endIndex else { break }
            frames.append(bytes[offset..<end])
            offset = end
        }
        return (frames, offset - bytes.startIndex)
    }
}
