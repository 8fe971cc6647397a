import CSndfile
import Foundation

/// The container of an audio file, recognised by its first bytes (never by its extension).
public enum AudioContainer: String, Sendable, Equatable {
    case wav = "WAV", flac = "FLAC", ogg = "Ogg", mp3 = "MP3", aiff = "AIFF"

    /// The container whose signature starts `header`, or nil.
    public static func recognise(_ header: [UInt8]) -> AudioContainer? {
        func starts(_ text: String, at offset: Int = 0) -> Bool {
            let bytes = Array(text.utf8)
            return header.count >= offset + bytes.count && Array(header[offset..<(offset + bytes.count)]) == bytes
        }
        if starts("RIFF") && starts("WAVE", at: 8) { return .wav }
        if starts("fLaC") { return .flac }
        if starts("OggS") { return .ogg }
        if starts("FORM") && (starts("AIFF", at: 8) || starts("AIFC", at: 8)) { return .aiff }
        // An ID3v2 tag, or an MPEG audio frame sync (11 set bits) with a valid layer.
        if starts("ID3") { return .mp3 }
        if header.count >= 2, header[0] == 0xFF, header[1] & 0xE0 == 0xE0, header[1] & 0x06 != 0 { return .mp3 }
        return nil
    }
}

/// Why an audio file could not be read. WAV files go through `WAVFile` and throw `WAVError`.
public enum AudioFileError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case empty(path: String)
    /// The first bytes match no supported container.
    case unrecognisedFormat(path: String, firstBytes: String)
    /// libsndfile could not open or decode it (its message).
    case decodeFailed(path: String, container: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): "\(path): no such file"
        case let .unreadable(path, reason): "\(path): cannot be read (\(reason))"
        case let .empty(path): "\(path): the file is empty"
        case let .unrecognisedFormat(path, bytes):
            "\(path): not an audio file this reader knows (expected WAV, FLAC, Ogg Vorbis/Opus, MP3 or AIFF; first bytes \(bytes))"
        case let .decodeFailed(path, container, reason): "\(path): cannot decode \(container) audio (libsndfile: \(reason))"
        }
    }
}

/// Reads reference audio of any supported container as mono float32: WAV with our own reader
/// (`WAVFile`), FLAC, Ogg (Vorbis, Opus), MP3 and AIFF through libsndfile — the decoder behind
/// python-soundfile, which `librosa.load` uses, so samples are scaled as upstream sees them.
///
/// Only the requested span is decoded, in blocks: `maxSeconds` bounds the I/O and the memory, so
/// the first seconds of an hour-long file cost only those seconds.
public enum AudioFile {
    /// The container of `path`, from its first 12 bytes. Throws for a missing, empty or
    /// unrecognised file.
    public static func container(path: String) throws -> AudioContainer {
        let header = try firstBytes(path, count: 12)
        guard let container = AudioContainer.recognise(header) else {
            throw AudioFileError.unrecognisedFormat(path: path, firstBytes: header.map { String(format: "%02x", $0) }.joined(separator: " "))
        }
        return container
    }

    /// Decodes at most `maxSeconds` (frames = round(seconds · rate), as `WAVFile.read`) mixed down
    /// to mono (channel average). Returns the samples, the file's rate, and whether the file holds
    /// more than was read.
    public static func read(path: String, maxSeconds: Double? = nil) throws -> (samples: [Float], sampleRate: Int, isPartial: Bool) {
        let kind = try container(path: path)
        if kind == .wav {
            do {
                let info = try WAVFile.info(path: path)
                let audio = try WAVFile.read(path: path, maxSeconds: maxSeconds)
                return (audio.samples, audio.sampleRate, audio.samples.count < info.frameCount)
            } catch WAVError.unsupportedFormat {
                // μ-law, ADPCM…: libsndfile decodes those.
            }
        }
        return try readWithSndfile(path: path, container: kind.rawValue, maxSeconds: maxSeconds)
    }

    /// `librosa.load(path, sr: sampleRate, mono: true, duration: maxSeconds)`: decode, average the
    /// channels, then soxr-HQ resample unless `sampleRate` is nil or the file's rate.
    public static func load(path: String, sampleRate: Int?, maxSeconds: Double? = nil) throws -> (samples: [Float], sampleRate: Int, isPartial: Bool) {
        let audio = try read(path: path, maxSeconds: maxSeconds)
        guard let target = sampleRate, target != audio.sampleRate else { return audio }
        return (try resample(audio.samples, from: audio.sampleRate, to: target), target, audio.isPartial)
    }

    private static func firstBytes(_ path: String, count: Int) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw AudioFileError.fileNotFound(path: path) }
        guard !isDirectory.boolValue else { throw AudioFileError.unreadable(path: path, reason: "it is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw AudioFileError.unreadable(path: path, reason: "permission denied or not a regular file")
        }
        defer { try? handle.close() }
        let data: Data
        do { data = try handle.read(upToCount: count) ?? Data() } catch {
            throw AudioFileError.unreadable(path: path, reason: "\(error)")
        }
        guard !data.isEmpty else { throw AudioFileError.empty(path: path) }
        return Array(data)
    }

    private static func readWithSndfile(path: String, container: String, maxSeconds: Double?) throws -> (samples: [Float], sampleRate: Int, isPartial: Bool) {
        var info = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &info) else {
            throw AudioFileError.decodeFailed(path: path, container: container, reason: String(cString: sf_strerror(nil)))
        }
        defer { sf_close(file) }
        let channels = Int(info.channels), rate = Int(info.samplerate)
        guard channels > 0, rate > 0 else {
            throw AudioFileError.decodeFailed(path: path, container: container, reason: "\(channels) channels at \(rate) Hz")
        }
        let limit = maxSeconds.map { Int((max(0, $0) * Double(rate)).rounded()) } ?? Int.max
        let blockFrames = 16_384
        var block = [Float](repeating: 0, count: blockFrames * channels)
        var samples = [Float]()
        if limit != Int.max { samples.reserveCapacity(min(limit, 1 << 24)) }
        var isPartial = false
        while samples.count < limit {
            let wanted = min(blockFrames, limit - samples.count)
            let got = Int(block.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, sf_count_t(wanted)) })
            if got < 0 || sf_error(file) != Int32(SF_ERR_NO_ERROR) {
                throw AudioFileError.decodeFailed(path: path, container: container, reason: String(cString: sf_strerror(file)))
            }
            if got == 0 { break }
            let scale = Float(channels)
            for frame in 0..<got {
                var sum: Float = 0
                for c in 0..<channels { sum += block[frame * channels + c] }
                samples.append(channels == 1 ? sum : sum / scale)
            }
        }
        if samples.count >= limit {
            // Whether anything follows the span that was read (MP3 frame counts are estimates).
            isPartial = Int(block.withUnsafeMutableBufferPointer { sf_readf_float(file, $0.baseAddress, 1) }) > 0
        }
        return (samples, rate, isPartial)
    }
}
