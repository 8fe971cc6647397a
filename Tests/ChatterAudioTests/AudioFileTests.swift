import ChatterAudio
import CSndfile
import Foundation
import Testing
import TestSupport

/// Reading reference audio of any container: WAV by our reader, FLAC / Ogg Vorbis / Ogg Opus / MP3
/// by libsndfile (files written at test time by libsndfile itself), chosen by magic bytes.
@Suite struct AudioFileTests {
    /// A 1 s two-channel test signal at 24 kHz: a 440 Hz tone left, 660 Hz right, at half scale.
    static let rate = 24_000
    static func stereo(seconds: Double = 1) -> [Float] {
        let frames = Int(seconds * Double(rate))
        var interleaved = [Float](repeating: 0, count: 2 * frames)
        for i in 0..<frames {
            let t = Double(i) / Double(rate)
            interleaved[2 * i] = Float(0.5 * sin(2 * .pi * 440 * t))
            interleaved[2 * i + 1] = Float(0.5 * sin(2 * .pi * 660 * t))
        }
        return interleaved
    }

    /// Writes `interleaved` with libsndfile in `format` (SF_FORMAT_* major | subtype); false when
    /// this libsndfile cannot write it.
    static func write(_ interleaved: [Float], channels: Int, rate: Int, format: Int32, to path: String) -> Bool {
        var info = SF_INFO()
        info.samplerate = Int32(rate)
        info.channels = Int32(channels)
        info.format = format
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else { return false }
        let frames = interleaved.count / channels
        let written = interleaved.withUnsafeBufferPointer { sf_writef_float(file, $0.baseAddress, sf_count_t(frames)) }
        sf_close(file)
        return written == frames
    }

    static let formats: [(name: String, format: Int32, container: AudioContainer, tolerance: Float)] = [
        ("flac", Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16), .flac, 1e-4),
        ("vorbis", Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS), .ogg, 0.05),
        ("opus", Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS), .ogg, 0.1),
        ("mp3", Int32(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III), .mp3, 0.1),
    ]

    @Test(arguments: formats.map(\.name))
    func decodesCompressedContainersByContent(_ name: String) throws {
        let spec = try #require(Self.formats.first { $0.name == name })
        let folder = try TemporaryDirectory()
        // A misleading extension: the reader must go by content.
        let path = folder.filePath("reference.wav.bin")
        // Opus codes at 48 kHz whatever the input rate; write it at 48 kHz so the rate read back is the coded one.
        let rate = name == "opus" ? 48_000 : Self.rate
        let signal = Self.stereo()
        let frames = signal.count / 2
        try #require(Self.write(signal, channels: 2, rate: rate, format: spec.format, to: path), "libsndfile cannot write \(name)")
        #expect(try AudioFile.container(path: path) == spec.container)
        let audio = try AudioFile.read(path: path)
        #expect(audio.sampleRate == rate)
        var mono = [Float](repeating: 0, count: frames)
        for i in 0..<frames { mono[i] = (signal[2 * i] + signal[2 * i + 1]) / 2 }
        // Lossy codecs add delay and priming; compare the energy and, for FLAC, the samples.
        #expect(abs(audio.samples.count - frames) <= frames / 10, "\(name): \(audio.samples.count) frames vs \(frames)")
        func rms(_ x: [Float]) -> Float { (x.reduce(0) { $0 + $1 * $1 } / Float(max(1, x.count))).squareRoot() }
        #expect(abs(rms(audio.samples) - rms(mono)) <= spec.tolerance * rms(mono), "\(name): rms \(rms(audio.samples)) vs \(rms(mono))")
        if name == "flac" {
            let error = zip(audio.samples, mono).map { abs($0 - $1) }.max() ?? 1
            #expect(audio.samples.count == frames && error <= 1.0 / 32768 + 1e-6, "FLAC 16-bit: max error \(error)")
        }
        // A bounded span decodes only that much.
        let head = try AudioFile.read(path: path, maxSeconds: 0.25)
        #expect(head.samples.count == rate / 4 && head.isPartial)
        print("audio file \(name): \(audio.samples.count) frames at \(audio.sampleRate) Hz")
    }

    @Test func wavGoesThroughOurReaderAndResamplesLikeLibrosa() throws {
        let folder = try TemporaryDirectory()
        let path = folder.filePath("reference.flac")  // a WAV despite its name
        let signal = Self.stereo()
        try WAVFile.write(signal, sampleRate: Self.rate, to: path, format: .float32, channels: 2)
        #expect(try AudioFile.container(path: path) == .wav)
        let ours = try AudioFile.load(path: path, sampleRate: 16_000)
        let wav = try WAVFile.load(path: path, sampleRate: 16_000)
        #expect(ours.samples == wav.samples && ours.sampleRate == 16_000 && !ours.isPartial)
    }

    @Test func badFilesGiveTypedErrors() throws {
        let folder = try TemporaryDirectory()
        #expect(throws: AudioFileError.fileNotFound(path: folder.filePath("missing.wav"))) {
            try AudioFile.read(path: folder.filePath("missing.wav"))
        }
        let empty = folder.filePath("empty.wav")
        try Data().write(to: URL(fileURLWithPath: empty))
        #expect(throws: AudioFileError.empty(path: empty)) { try AudioFile.read(path: empty) }
        let text = folder.filePath("notes.mp3")
        try "this is not audio at all".write(toFile: text, atomically: true, encoding: .utf8)
        do {
            _ = try AudioFile.read(path: text)
            Issue.record("a text file was accepted")
        } catch let error as AudioFileError {
            guard case .unrecognisedFormat(let path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == text)
            print("non-audio: \(error)")
        }
        // A FLAC signature followed by garbage: libsndfile's refusal, typed.
        let broken = folder.filePath("broken.flac")
        try Data("fLaC".utf8 + [UInt8](repeating: 0x5A, count: 64)).write(to: URL(fileURLWithPath: broken))
        do {
            _ = try AudioFile.read(path: broken)
            Issue.record("a broken FLAC was accepted")
        } catch let error as AudioFileError {
            guard case .decodeFailed = error else { Issue.record("\(error)"); return }
            print("broken FLAC: \(error)")
        }
        // A truncated WAV header is the WAV reader's typed error.
        let truncated = folder.filePath("truncated.wav")
        try Data("RIFF\u{24}\0\0\0WAVEfmt ".utf8).write(to: URL(fileURLWithPath: truncated))
        #expect(throws: WAVError.self) { try AudioFile.read(path: truncated) }
    }
}
