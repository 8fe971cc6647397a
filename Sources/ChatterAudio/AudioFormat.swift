import Foundation

/// The one name for an audio output format, wherever audio leaves the engine: a file written by
/// `chatterstream say -o`, the bytes `chatterstream stream` pipes, a chunk's `encoded` bytes, an HTTP
/// response. Each format knows its extension, MIME type and streaming encoder. The raw values are the
/// names OpenAI's speech API uses for `response_format`.
public enum AudioFormat: String, Sendable, CaseIterable, Codable {
    /// Constant-bit-rate MP3 (LAME); files carry a LAME Info tag (exact length).
    case mp3
    /// Ogg Opus (RFC 7845); `.opus` or `.ogg` files.
    case opus
    /// AAC-LC in ADTS frames (FFmpeg's native encoder), playable as it arrives.
    case aac
    /// FLAC (FFmpeg's encoder), lossless; streamed with the total length left unknown in STREAMINFO.
    case flac
    /// 16-bit PCM WAV. Files have their exact sizes; a stream's header declares the largest length
    /// (0xFFFFFFFF), which players and ffmpeg read as "until the end".
    case wav
    /// Raw signed 16-bit little-endian PCM, mono, no header. Its MIME type is
    /// `application/octet-stream`: the registered `audio/L16` is big-endian (RFC 2586).
    case pcm

    /// The usual file extension, without the dot.
    public var fileExtension: String { rawValue }

    /// Every extension `init(path:)` recognises, without the dot.
    public static let knownExtensions = ["mp3", "opus", "ogg", "aac", "flac", "wav", "pcm"]

    public var mimeType: String {
        switch self {
        case .mp3: "audio/mpeg"
        case .opus: "audio/ogg"
        case .aac: "audio/aac"
        case .flac: "audio/flac"
        case .wav: "audio/wav"
        case .pcm: "application/octet-stream"
        }
    }

    /// The format named `name` (case-insensitive), or `AudioEncodingError.unknownFormat` listing them.
    public init(name: String) throws {
        guard let format = AudioFormat(rawValue: name.lowercased()) else {
            throw AudioEncodingError.unknownFormat(name, supported: Self.allCases.map(\.rawValue))
        }
        self = format
    }

    /// The format for `path`'s extension (case-insensitive); an unknown or missing extension is an
    /// `AudioEncodingError.unknownFileExtension` that lists the known ones.
    public init(path: String) throws {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if ext == "ogg" { self = .opus; return }
        guard let format = AudioFormat(rawValue: ext) else {
            throw AudioEncodingError.unknownFileExtension(path: path, supported: Self.knownExtensions)
        }
        self = format
    }

    /// A streaming encoder producing this format's bytes as samples arrive.
    public func makeStreamingEncoder(sampleRate: Int = 24_000) throws -> any StreamingAudioEncoder {
        switch self {
        case .mp3: try MP3Encoder(sampleRate: sampleRate)
        case .opus: try OggOpusEncoder(sampleRate: sampleRate)
        case .aac: try AACEncoder(sampleRate: sampleRate)
        case .flac: try FLACEncoder(sampleRate: sampleRate)
        case .wav: try StreamingWAVEncoder(sampleRate: sampleRate)
        case .pcm: try RawPCMEncoder(sampleRate: sampleRate)
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
    /// valid empty file, except for MP3, where it is `AudioEncodingError.emptyAudio` (see `MP3File`).
    public func write(_ samples: [Float], sampleRate: Int = 24_000, to path: String) throws {
        switch self {
        case .wav:
            guard sampleRate > 0 else {
                throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "WAV writer", supported: [])
            }
            try WAVFile.write(samples, sampleRate: sampleRate, to: path, format: .pcm16)
        case .mp3:
            try MP3File.write(samples, sampleRate: sampleRate, to: path)
        case .opus, .aac, .flac, .pcm:
            let encoder = try makeStreamingEncoder(sampleRate: sampleRate)
            var stream = try encoder.encode(samples)
            stream.append(try encoder.finalize())
            if let reason = AtomicFile.write(stream, to: path) { throw AudioEncodingError.writeFailed(path: path, reason: reason) }
        }
    }

    /// Writes `samples` to `path` in the format its extension names.
    public static func write(_ samples: [Float], sampleRate: Int = 24_000, to path: String) throws {
        try AudioFormat(path: path).write(samples, sampleRate: sampleRate, to: path)
    }
}
