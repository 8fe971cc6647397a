import ChatterAudio
// The library's callers name output formats without importing ChatterAudio.
@_exported import enum ChatterAudio.AudioFormat
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
    /// This chunk's audio in the stream's `AudioFormat` (Ogg pages, MP3 frames, …; the container's
    /// header in the first chunk, its end in the final one) when one is attached, else empty.
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
