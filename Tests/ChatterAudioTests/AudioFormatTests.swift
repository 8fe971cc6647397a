import ChatterAudio
import Foundation
import Testing
import TestSupport

@Suite struct AudioFormatTests {
    @Test func extensionChoosesTheFormat() throws {
        let cases: [(String, AudioFormat)] = [("out.wav", .wav), ("a/b/OUT.MP3", .mp3), ("x.opus", .opus), ("x.ogg", .opus),
                                              ("x.aac", .aac), ("x.flac", .flac), ("x.pcm", .pcm)]
        for (path, format) in cases { #expect(try AudioFormat(path: path) == format, "\(path)") }
        for path in ["out.aiff", "out", "out.wav.part"] {
            #expect(throws: AudioEncodingError.unknownFileExtension(path: path, supported: AudioFormat.knownExtensions)) {
                _ = try AudioFormat(path: path)
            }
        }
        let message = "\(AudioEncodingError.unknownFileExtension(path: "out.aiff", supported: AudioFormat.knownExtensions))"
        print("unknown extension: \(message)")
        #expect(message.contains(".mp3, .opus, .ogg, .aac, .flac, .wav, .pcm"))
        #expect(throws: AudioEncodingError.unknownFormat("vorbis", supported: AudioFormat.allCases.map(\.rawValue))) {
            _ = try AudioFormat(name: "vorbis")
        }
        for format in AudioFormat.allCases {
            let encoder = try format.makeStreamingEncoder()
            #expect(encoder.mimeType == format.mimeType && encoder.fileExtension == format.fileExtension, "\(format)")
        }
    }

    @Test func writesEachFormatAtomically() throws {
        let folder = try TemporaryDirectory()
        let input = OggOpusTests.voice(seconds: 0.75)
        for name in ["out.wav", "out.mp3", "out.opus", "out.flac", "out.aac", "out.pcm"] {
            try AudioFormat.write(input, to: folder.filePath(name))
        }
        let wav = try WAVFile.read(path: folder.filePath("out.wav"))
        let opus = try OggOpusDecoder.decode(try Data(contentsOf: folder.path("out.opus")))
        let mp3 = try Data(contentsOf: folder.path("out.mp3"))
        let frames = MP3FrameHeader.splitFrames(mp3)?.frames.count ?? 0
        let pcm = try Data(contentsOf: folder.path("out.pcm"))
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted()
        print("AudioFormat.write: wav \(wav.samples.count) samples, opus \(opus.count) samples, mp3 \(mp3.count) bytes in \(frames) frames, pcm \(pcm.count) bytes; folder \(left)")
        #expect(wav.samples.count == input.count && wav.sampleRate == 24_000)
        #expect(opus.count == input.count)
        #expect(frames >= input.count / 576)
        #expect(pcm.count == 2 * input.count)
        #expect(left == ["out.aac", "out.flac", "out.mp3", "out.opus", "out.pcm", "out.wav"], "no temporary files left behind")
        #expect(throws: AudioEncodingError.self) { try AudioFormat.write(input, to: folder.filePath("out.aiff")) }
        #expect(throws: AudioEncodingError.self) { try AudioFormat.wav.write(input, sampleRate: 0, to: folder.filePath("bad.wav")) }
        #expect(throws: (any Error).self) { try AudioFormat.write(input, to: folder.filePath("missing/out.opus")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == left)
    }

    /// FLAC and AAC come from libavcodec; ffmpeg (a real client) must decode them, FLAC to exactly
    /// the input samples, AAC to the input plus its priming and last-frame padding.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg"), "needs ffmpeg"))
    func flacIsLosslessAndAACDecodes() throws {
        let folder = try TemporaryDirectory()
        let input = OggOpusTests.voice(seconds: 1.3)
        let int16 = input.map { Int16((Double(max(-1, min(1, $0))) * 32767).rounded(.toNearestOrEven)) }
        for format in [AudioFormat.flac, .aac] {
            // Streamed in uneven pieces, as the engine's chunks arrive.
            let encoder = try format.makeStreamingEncoder()
            var bytes = Data()
            var start = 0
            for size in [1000, 7, 4096, 20_000] + [Int](repeating: 3000, count: 20) where start < int16.count {
                let end = min(start + size, int16.count)
                bytes += try encoder.encode(Array(int16[start..<end]))
                start = end
            }
            bytes += try encoder.finalize()
            let path = folder.filePath("stream.\(format.fileExtension)")
            try bytes.write(to: URL(fileURLWithPath: path))
            let decoded = try Self.ffmpegDecode(path)
            print("\(format): \(bytes.count) bytes decode to \(decoded.count) samples (input \(int16.count))")
            if format == .flac {
                #expect(decoded == int16, "FLAC must decode to the exact input samples")
            } else {
                #expect(decoded.count >= int16.count && decoded.count <= int16.count + 2048 + 1024,
                        "AAC decodes to the input plus ≤ 1024 priming and ≤ 1 frame of padding")
            }
        }
    }

    static func ffmpegDecode(_ path: String) throws -> [Int16] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        process.arguments = ["-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "24000", "-"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data.withUnsafeBytes { raw in (0..<(raw.count / 2)).map { Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self)) } }
    }

    @Test func speedChangesDurationNotPitch() throws {
        let input = OggOpusTests.voice(seconds: 2)
        for speed: Float in [0.5, 2] {
            let changer = try SpeechRateChanger(speed: speed)
            var out: [Float] = []
            for start in stride(from: 0, to: input.count, by: 4800) { out += changer.process(Array(input[start..<min(start + 4800, input.count)])) }
            out += changer.finish()
            let expected = Double(input.count) / Double(speed)
            print("speed \(speed): \(input.count) samples → \(out.count) (expected ≈ \(Int(expected)))")
            #expect(abs(Double(out.count) - expected) < 0.02 * expected)
        }
        #expect(try SpeechRateChanger(speed: 1).process(input) == input)
        #expect(throws: AudioEncodingError.unsupportedSpeed(5)) { _ = try SpeechRateChanger(speed: 5) }
    }

    @Test func emptyAudioIsAnEmptyFileOrATypedError() throws {
        let folder = try TemporaryDirectory()
        try AudioFormat.write([], to: folder.filePath("empty.wav"))
        try AudioFormat.write([], to: folder.filePath("empty.opus"))
        let wav = try WAVFile.read(path: folder.filePath("empty.wav"))
        let opus = try OggOpusDecoder.decode(try Data(contentsOf: folder.path("empty.opus")))
        #expect(throws: AudioEncodingError.emptyAudio(path: folder.filePath("empty.mp3"), format: "MP3")) {
            try AudioFormat.write([], to: folder.filePath("empty.mp3"))
        }
        print("empty audio: wav \(wav.samples.count) samples, opus \(opus.count) samples, mp3 refused")
        #expect(wav.samples.isEmpty && opus.isEmpty)
    }
}
