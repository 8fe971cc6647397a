import Foundation

/// An encoder the streaming pipeline can attach to a stream of audio chunks: mono samples in (at the
/// encoder's `sampleRate`), bytes out as soon as they are ready, the tail on `finalize()`, and
/// `reset()` to begin a new, independent stream. Ogg Opus, MP3 and raw PCM conform.
///
/// Contract shared by the conformers: samples are clamped to [-1, 1] and NaN is encoded as silence
/// (see `EncoderInput`); `encode` after `finalize` throws; a second `finalize` returns no bytes; a
/// stream that was never given samples finalizes to the format's empty stream (Ogg Opus: the headers
/// and an end-of-stream page, which decode to zero samples; MP3 and raw PCM: no bytes).
public protocol StreamingAudioEncoder: AnyObject {
    /// The rate of the samples `encode` takes.
    var sampleRate: Int { get }
    /// The HTTP content type of the bytes.
    var mimeType: String { get }
    /// The usual file extension, without the dot.
    var fileExtension: String { get }
    /// Encodes a chunk; returns the bytes completed by it (possibly none).
    func encode(_ samples: [Float]) throws -> Data
    /// Encodes 16-bit samples (full scale 32768, as `AudioChunk` carries them). A requirement, with
    /// a default that goes through `[Float]`, so an encoder that can take them exactly (raw PCM) does.
    func encode(_ samples: [Int16]) throws -> Data
    /// Encodes whatever is buffered and ends the stream; returns the remaining bytes.
    func finalize() throws -> Data
    /// Drops any state and starts a new stream (headers again, timestamps from zero).
    func reset() throws
}

extension StreamingAudioEncoder {
    /// Encodes a chunk that states its sample rate; a rate other than the encoder's is a typed error,
    /// never a silent pitch shift.
    public func encode(_ samples: [Float], sampleRate rate: Int) throws -> Data {
        guard rate == sampleRate else { throw AudioEncodingError.sampleRateMismatch(expected: sampleRate, got: rate) }
        return try encode(samples)
    }

    public func encode(_ samples: [Int16]) throws -> Data {
        try encode(samples.map { Float($0) / 32768 })
    }

    /// Encodes little-endian 16-bit PCM bytes, the Python package's `encode(pcm_bytes)`. An odd byte
    /// count is an error rather than a dropped byte.
    public func encode(pcm16LittleEndian bytes: Data) throws -> Data {
        guard bytes.count % 2 == 0 else { throw AudioEncodingError.oddPCMByteCount(bytes.count) }
        let samples = bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) }
        }
        return try encode(samples)
    }
}
