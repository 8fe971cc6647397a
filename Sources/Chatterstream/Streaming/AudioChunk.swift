import ChatterAudio
import Foundation

/// One piece of a synthesis stream: 24 kHz mono 16-bit PCM, and the same audio encoded when an
/// encoder is attached.
public struct AudioChunk: Sendable, Equatable {
    /// Little-endian int16 samples.
    public var pcm: Data
    public var sampleRate: Int
    /// The last chunk of the stream (its audio may be empty when the stream ends on a boundary).
    public var isFinal: Bool
    public var chunkIndex: Int
    /// Encoded bytes for this chunk (Ogg pages, MP3 frames, …) when an encoder is attached, else empty.
    public var encoded: Data

    public init(pcm: Data, sampleRate: Int, isFinal: Bool, chunkIndex: Int, encoded: Data = Data()) {
        self.pcm = pcm
        self.sampleRate = sampleRate
        self.isFinal = isFinal
        self.chunkIndex = chunkIndex
        self.encoded = encoded
    }

    public var sampleCount: Int { pcm.count / 2 }
    public var durationMs: Double { Double(sampleCount) * 1000 / Double(sampleRate) }

    /// The samples as Int16.
    public var samples: [Int16] {
        pcm.withUnsafeBytes { raw in (0..<sampleCount).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) } }
    }
}

/// An encoding attached to a stream: each chunk's `encoded` holds that chunk's audio in it (the
/// container's headers in the first chunk, its end in the final one), so concatenating them gives a
/// complete file or a live stream for a player.
public enum ChunkEncoding: String, Sendable, CaseIterable {
    /// Ogg Opus (RFC 7845), `audio/ogg`.
    case oggOpus = "opus"
    /// MP3 (constant bit rate), `audio/mpeg`.
    case mp3

    func makeEncoder(sampleRate: Int) throws -> any StreamingAudioEncoder {
        switch self {
        case .oggOpus: try OggOpusEncoder(sampleRate: sampleRate)
        case .mp3: try MP3Encoder(sampleRate: sampleRate)
        }
    }

    public var mimeType: String {
        switch self {
        case .oggOpus: "audio/ogg"
        case .mp3: "audio/mpeg"
        }
    }
}
