import ArgumentParser
import ChatterAudio
import Chatterstream
import Foundation

/// The audio file `say` writes, chosen by extension.
enum OutputFormat {
    case wav, oggOpus

    init(path: String) throws {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "wav": self = .wav
        case "opus", "ogg": self = .oggOpus
        case let other:
            throw ValidationError("cannot write '.\(other)' files: use .wav or .opus/.ogg")
        }
    }

    func makeSink() throws -> any AudioFileSink {
        switch self {
        case .wav: PCMWAVSink()
        case .oggOpus: try OggOpusSink()
        }
    }
}

/// Collects a stream's chunks and writes the file atomically at the end, so a failed or
/// interrupted synthesis leaves no partial file.
protocol AudioFileSink: AnyObject {
    func add(_ chunk: AudioChunk) throws
    func finish(writingTo path: String) throws
}

extension AudioFileSink {
    static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        try data.write(to: temporary)
        do {
            if FileManager.default.fileExists(atPath: url.path) {
                _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary)
            } else {
                try FileManager.default.moveItem(at: temporary, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}

/// 16-bit PCM WAV holding the stream's int16 samples as they are (no float round trip).
final class PCMWAVSink: AudioFileSink {
    private var pcm = Data()
    func add(_ chunk: AudioChunk) { pcm.append(chunk.pcm) }

    func finish(writingTo path: String) throws {
        var header = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        header.append(contentsOf: Array("RIFF".utf8)); u32(UInt32(36 + pcm.count))
        header.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(1); u32(24_000); u32(48_000); u16(2); u16(16)
        header.append(contentsOf: Array("data".utf8)); u32(UInt32(pcm.count))
        try Self.writeAtomically(header + pcm, to: path)
    }
}

final class OggOpusSink: AudioFileSink {
    private let encoder: OggOpusEncoder
    private var bytes = Data()
    init() throws { encoder = try OggOpusEncoder(sampleRate: 24_000) }
    func add(_ chunk: AudioChunk) throws { bytes += try encoder.encode(chunk.samples.map { Float($0) / 32768 }) }
    func finish(writingTo path: String) throws {
        bytes += try encoder.finish()
        try Self.writeAtomically(bytes, to: path)
    }
}
