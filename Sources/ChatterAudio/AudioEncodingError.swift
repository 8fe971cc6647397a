/// Why an audio encoder, the HLS segmenter or an audio file writer refused its input. Every case says
/// what was expected, so the caller can fix the call. (The Ogg Opus encoder keeps its own
/// `OggOpusError`.)
public enum AudioEncodingError: Error, Equatable, CustomStringConvertible {
    /// The encoder cannot take audio at this rate (an empty `supported` means any positive rate).
    case unsupportedSampleRate(Int, encoder: String, supported: [Int])
    /// A chunk arrived at a different rate from the one the encoder was made for.
    case sampleRateMismatch(expected: Int, got: Int)
    /// The requested bit rate is not one the format has at this sample rate.
    case unsupportedBitrate(Int, sampleRate: Int, supported: [Int])
    /// 16-bit PCM bytes must come in whole samples; an odd count would lose a byte.
    case oddPCMByteCount(Int)
    /// `encode` / `addSegment` after `finalize`; `reset()` starts a new stream.
    case finalized(encoder: String)
    /// The output path has an extension no writer knows.
    case unknownFileExtension(path: String, supported: [String])
    /// A format name that is not an `AudioFormat`.
    case unknownFormat(String, supported: [String])
    /// An FFmpeg (libavcodec) call failed.
    case libavcodec(call: String, code: Int32)
    /// A speed outside what the speech-rate changer takes.
    case unsupportedSpeed(Float)
    /// LAME reported an error.
    case lame(call: String, code: Int32)
    /// The format cannot represent zero samples as a file players accept.
    case emptyAudio(path: String, format: String)
    /// The file could not be written (nothing was left behind at the path).
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedSampleRate(rate, encoder, supported) where supported.isEmpty:
            "\(encoder) cannot take \(rate) Hz audio (the rate must be positive)"
        case let .unsupportedSampleRate(rate, encoder, supported):
            "\(encoder) cannot take \(rate) Hz audio (supported: \(supported.map(String.init).joined(separator: ", ")) Hz)"
        case let .sampleRateMismatch(expected, got):
            "a \(got) Hz chunk was given to an encoder made for \(expected) Hz; resample it or make the encoder for \(got) Hz"
        case let .unsupportedBitrate(bitrate, sampleRate, supported):
            "MP3 at \(sampleRate) Hz has no \(bitrate) b/s constant bit rate (choose one of \(supported.map { "\($0 / 1000)k" }.joined(separator: ", ")))"
        case let .oddPCMByteCount(count):
            "\(count) bytes of 16-bit PCM is not a whole number of samples (one byte would be lost)"
        case let .finalized(encoder):
            "the \(encoder) is finalized; call reset() to start a new stream"
        case let .unknownFileExtension(path, supported):
            "\(path): unknown audio file extension (use one of \(supported.map { "." + $0 }.joined(separator: ", ")))"
        case let .unknownFormat(name, supported):
            "unknown audio format '\(name)' (use one of \(supported.joined(separator: ", ")))"
        case let .libavcodec(call, code):
            "\(call) failed with libavcodec error \(code)"
        case let .unsupportedSpeed(speed):
            "speed \(speed) is outside 0.25...4.0"
        case let .lame(call, code):
            "\(call) failed with LAME error \(code)"
        case let .emptyAudio(path, format):
            "\(path): no audio to write, and an empty \(format) file is not one players accept (write .wav or .opus for empty audio)"
        case let .writeFailed(path, reason):
            "\(path): cannot write (\(reason))"
        }
    }
}
