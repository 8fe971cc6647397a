import ChatterAudio
import Foundation
import Testing
import TestSupport

@Suite struct AudioFileFormatTests {
    @Test func extensionChoosesTheFormat() throws {
        let cases: [(String, AudioFileFormat)] = [("out.wav", .wav), ("a/b/OUT.MP3", .mp3), ("x.opus", .oggOpus), ("x.ogg", .oggOpus)]
        for (path, format) in cases { #expect(try AudioFileFormat(path: path) == format, "\(path)") }
        for path in ["out.flac", "out", "out.wav.part"] {
            #expect(throws: AudioEncodingError.unknownFileExtension(path: path, supported: AudioFileFormat.knownExtensions)) {
                _ = try AudioFileFormat(path: path)
            }
        }
        let message = "\(AudioEncodingError.unknownFileExtension(path: "out.flac", supported: AudioFileFormat.knownExtensions))"
        print("unknown extension: \(message)")
        #expect(message.contains(".wav, .mp3, .opus, .ogg"))
        #expect(try AudioFileFormat.wav.makeStreamingEncoder() == nil)
        #expect(try AudioFileFormat.mp3.makeStreamingEncoder()?.mimeType == "audio/mpeg")
        #expect(try AudioFileFormat.oggOpus.makeStreamingEncoder()?.fileExtension == "opus")
    }

    @Test func writesEachFormatAtomically() throws {
        let folder = try TemporaryDirectory()
        let input = OggOpusTests.voice(seconds: 0.75)
        for name in ["out.wav", "out.mp3", "out.opus"] {
            try AudioFileFormat.write(input, to: folder.filePath(name))
        }
        let wav = try WAVFile.read(path: folder.filePath("out.wav"))
        let opus = try OggOpusDecoder.decode(try Data(contentsOf: folder.path("out.opus")))
        let mp3 = try Data(contentsOf: folder.path("out.mp3"))
        let frames = MP3FrameHeader.splitFrames(mp3)?.frames.count ?? 0
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted()
        print("AudioFileFormat.write: wav \(wav.samples.count) samples, opus \(opus.count) samples, mp3 \(mp3.count) bytes in \(frames) frames; folder \(left)")
        #expect(wav.samples.count == input.count && wav.sampleRate == 24_000)
        #expect(opus.count == input.count)
        #expect(frames >= input.count / 576)
        #expect(left == ["out.mp3", "out.opus", "out.wav"], "no temporary files left behind")
        #expect(throws: AudioEncodingError.self) { try AudioFileFormat.write(input, to: folder.filePath("out.aiff")) }
        #expect(throws: AudioEncodingError.self) { try AudioFileFormat.wav.write(input, sampleRate: 0, to: folder.filePath("bad.wav")) }
        #expect(throws: (any Error).self) { try AudioFileFormat.write(input, to: folder.filePath("missing/out.opus")) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path).sorted() == left)
    }

    @Test func emptyAudioIsAnEmptyFileOrATypedError() throws {
        let folder = try TemporaryDirectory()
        try AudioFileFormat.write([], to: folder.filePath("empty.wav"))
        try AudioFileFormat.write([], to: folder.filePath("empty.opus"))
        let wav = try WAVFile.read(path: folder.filePath("empty.wav"))
        let opus = try OggOpusDecoder.decode(try Data(contentsOf: folder.path("empty.opus")))
        #expect(throws: AudioEncodingError.emptyAudio(path: folder.filePath("empty.mp3"), format: "MP3")) {
            try AudioFileFormat.write([], to: folder.filePath("empty.mp3"))
        }
        print("empty audio: wav \(wav.samples.count) samples, opus \(opus.count) samples, mp3 refused")
        #expect(wav.samples.isEmpty && opus.isEmpty)
    }
}
