import Chatterstream
import Foundation

/// The container a `/v1/speech` response streams, and how its bytes come out of each chunk.
public enum SpeechFormat: String, Sendable, CaseIterable, Codable {
    /// Raw signed 16-bit little-endian PCM, 24 kHz mono, no header. Sent as
    /// `application/octet-stream` with `X-Audio-*` headers saying so: `audio/L16` would be wrong,
    /// RFC 2586 defines L16 as big-endian (network order).
    case pcm
    /// Ogg Opus (RFC 7845), playable as it arrives.
    case opus
    /// MP3 frames (constant bit rate).
    case mp3
    /// A 16-bit PCM WAV whose header, sent first, declares the maximal length (0xFFFFFFFF) because
    /// the length is unknown until the end; then the PCM as it is made (`StreamingWAVHeader`).
    case wav

    public var contentType: String {
        switch self {
        case .pcm: "application/octet-stream"
        case .opus: ChunkEncoding.oggOpus.mimeType
        case .mp3: ChunkEncoding.mp3.mimeType
        case .wav: "audio/wav"
        }
    }

    /// The encoder the engine attaches to the stream (nil: the chunks' PCM is sent as is).
    var chunkEncoding: ChunkEncoding? {
        switch self {
        case .pcm, .wav: nil
        case .opus: .oggOpus
        case .mp3: .mp3
        }
    }

    /// Bytes sent before the first chunk's.
    func preamble(sampleRate: Int) -> Data {
        self == .wav ? StreamingWAVHeader.bytes(sampleRate: sampleRate) : Data()
    }

    /// The bytes of `chunk` in this format.
    func payload(of chunk: AudioChunk) -> Data {
        chunkEncoding == nil ? chunk.pcm : chunk.encoded
    }

    /// Parses a request's `format`, naming the accepted ones when it is unknown.
    init(requested: String) throws(APIError) {
        guard let format = SpeechFormat(rawValue: requested.lowercased()) else {
            throw APIError(.badRequest, "unknown format '\(requested)': use one of \(SpeechFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = format
    }
}
