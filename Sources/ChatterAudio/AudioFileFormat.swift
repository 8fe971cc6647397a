import Foundation

/// The audio file types `chatterstream say -o` writes, chosen by the output's extension.
public enum AudioFileFormat: String, Sendable, CaseIterable {
    /// 16-bit PCM WAV.
    case wav
    /// Constant-bit-rate MP3 with a LAME Info tag (exact length).
    case mp3
    /// Ogg Opus (RFC 7845), `.opus` or `.ogg`.
    case oggOpus

    /// Every extension recognised, without the dot.
    public static let knownExtensions = ["wav", "mp3", "opus", "ogg"]

    /// The format for `path`'s extension (case-insensitive); an unknown or missing extension is an
    /// `AudioEncodingError.unknownFileExtension` that lists the known ones.
    public init(path: String) throws {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "wav": self = .wav
        case "mp3": self = .mp3
        case "opus", "ogg": self = .oggOpus
        default: throw AudioEncodingError.unknownFileExtension(path: path, supported: Self.knownExtensions)
        }
    }

    public var mimeType: String {
        switch self {
        case .wav: "audio/wav"
        case .mp3: "audio/mpeg"
        case .oggOpus: "audio/ogg"
        }
    }

    /// A streaming encoder producing this format's bytes (WAV has none: its header needs the length,
    /// so a WAV stream is raw PCM plus a header written at the end; use `write`).
    public func makeStreamingEncoder(sampleRate: Int = 24_000) throws -> (any StreamingAudioEncoder)? {
        switch self {
        case .wav: nil
        case .mp3: try MP3Encoder(sampleRate: sampleRate)
        case .oggOpus: try OggOpusEncoder(sampleRate: sampleRate)
        }
    }

    /// Checks, before any work, that `write` could create `path`: its folder exists and takes a new
    /// file (one is created there and removed), and `path` is not a folder. Throws
    /// `AudioEncodingError.writeFailed` with the reason otherwise; leaves nothing behind.
    public static func checkDestination(_ path: String) throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw AudioEncodingError.writeFailed(path: path, reason: "it is a folder")
        }
        let probe = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).probe")
        if let reason = AtomicFile.write(Data(), to: probe.path) { throw AudioEncodingError.writeFailed(path: path, reason: reason) }
        try? FileManager.default.removeItem(at: probe)
    }

    /// Writes mono `samples` to `path` in this format, atomically (no partial file on error).
    /// Samples are clamped to [-1, 1] and NaN is written as silence, in every format. No samples make a
    /// valid empty WAV or Ogg Opus file; for MP3 it is `AudioEncodingError.emptyAudio` (see `MP3File`).
    public func write(_ samples: [Float], sampleRate: Int = 24_000, to path: String) throws {
        switch self {
        case .wav:
            guard sampleRate > 0 else {
                throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "WAV writer", supported: [])
            }
            try WAVFile.write(samples, sampleRate: sampleRate, to: path, format: .pcm16)
        case .mp3:
            try MP3File.write(samples, sampleRate: sampleRate, to: path)
        case .oggOpus:
            let encoder = try OggOpusEncoder(sampleRate: sampleRate)
            var stream = try encoder.encode(samples)
            stream.append(try encoder.finalize())
            if let reason = AtomicFile.write(stream, to: path) { throw AudioEncodingError.writeFailed(path: path, reason: reason) }
        }
    }

    /// Writes `samples` to `path` in the format its extension names.
    public static func write(_ samples: [Float], sampleRate: Int = 24_000, to path: String) throws {
        try AudioFileFormat(path: path).write(samples, sampleRate: sampleRate, to: path)
    }
}
