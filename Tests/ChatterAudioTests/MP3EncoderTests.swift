import ChatterAudio
import Foundation
import Testing
import TestSupport

@Suite struct MP3EncoderTests {
    static let ffmpeg = ExternalTool("ffmpeg")

    /// Decodes an MP3 file with ffmpeg to 16-bit samples (ffmpeg honours the LAME tag's delay and padding).
    static func ffmpegDecode(_ path: String) throws -> (samples: [Float], stderr: String) {
        let folder = try TemporaryDirectory()
        let result = try #require(ffmpeg).run(["-hide_banner", "-nostdin", "-v", "error", "-i", path,
                                               "-f", "s16le", "-ac", "1", "-ar", "24000", folder.filePath("out.raw")])
        #expect(result.status == 0, "\(result.stderr)")
        let raw = (try? Data(contentsOf: folder.path("out.raw"))) ?? Data()
        let samples = raw.withUnsafeBytes { bytes in
            (0..<(bytes.count / 2)).map { Float(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) / 32768 }
        }
        return (samples, result.stderr)
    }

    @Test func streamsWholeFramesAndAccountsForDelayAndPadding() throws {
        let input = OggOpusTests.voice(seconds: 2.013)
        let encoder = try MP3Encoder()
        var stream = Data()
        var offset = 0
        for size in [1, 575, 9_600, 13, 24_000] where offset < input.count {
            stream.append(try encoder.encode(Array(input[offset..<min(input.count, offset + size)])))
            offset += size
        }
        stream.append(try encoder.encode(Array(input[offset...])))
        stream.append(try encoder.finalize())
        let (frames, consumed) = try #require(MP3FrameHeader.splitFrames(stream))
        let header = try #require(MP3FrameHeader(frames[0]))
        let padding = try #require(encoder.encoderPadding)
        print("MP3 64 kb/s: \(frames.count) frames of \(header.samplesPerFrame), delay \(encoder.encoderDelay), padding \(padding), \(stream.count) bytes for \(input.count) samples")
        #expect(consumed == stream.count, "the output is whole frames only")
        #expect(header.version == .mpeg2 && header.sampleRate == 24_000 && header.bitrate == 64_000 && header.isMono)
        #expect(encoder.samplesPerFrame == 576)
        #expect(frames.count * 576 == encoder.encoderDelay + input.count + padding,
                "frames × 576 = delay + input + padding")
        #expect(encoder.inputSampleCount == input.count)
    }

    @Test(.enabled(if: ffmpeg != nil, "ffmpeg is not installed; skipping the MP3 file decode check"))
    func fileDecodesToExactlyTheInputLength() throws {
        let folder = try TemporaryDirectory()
        let input = OggOpusTests.voice(seconds: 1.7)
        try MP3File.write(input, to: folder.filePath("voice.mp3"))
        let file = try Data(contentsOf: folder.path("voice.mp3"))
        let (decoded, stderr) = try Self.ffmpegDecode(folder.filePath("voice.mp3"))
        let snr = OggOpusTests.snr(input, decoded)
        print("MP3 file: \(file.count) bytes, ffmpeg decoded \(decoded.count) samples for \(input.count), SNR \(String(format: "%.1f", snr)) dB")
        #expect(String(decoding: file.prefix(400), as: UTF8.self).contains("Info"), "the first frame is a LAME Info tag")
        #expect(stderr.isEmpty, "\(stderr)")
        #expect(decoded.count == input.count, "the Info tag's delay and padding let ffmpeg return exactly the input")
        #expect(snr > 10, "aligned to the sample: gapless trimming is right")
        // Only the file itself in the folder: the temporary was renamed, not left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.url.path) == ["voice.mp3"])
    }

    /// An empty stream is no frames at all; an empty MP3 file is a typed error, since no MP3 file
    /// decodes to zero samples (ffmpeg rejects a lone Info frame; LAME's flush adds 1152 samples).
    @Test func emptyStreamHasNoFramesAndAnEmptyFileIsATypedError() throws {
        let folder = try TemporaryDirectory()
        let encoder = try MP3Encoder()
        let stream = try encoder.encode([]) + encoder.finalize()
        #expect(stream.isEmpty && encoder.encoderPadding == 0)
        let path = folder.filePath("empty.mp3")
        var message = ""
        #expect(throws: AudioEncodingError.emptyAudio(path: path, format: "MP3")) {
            do { try MP3File.write([], to: path) } catch { message = "\(error)"; throw error }
        }
        print("empty MP3 stream: \(stream.count) bytes; empty MP3 file: \(message)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func rejectsBadInputWithTypedErrors() throws {
        #expect(throws: AudioEncodingError.unsupportedSampleRate(22_000, encoder: "MP3 encoder", supported: MP3Encoder.supportedSampleRates)) {
            _ = try MP3Encoder(sampleRate: 22_000)
        }
        var options = MP3Encoder.Options()
        options.bitrate = 65_000
        #expect(throws: AudioEncodingError.unsupportedBitrate(65_000, sampleRate: 24_000, supported: MP3FrameHeader.bitrates(sampleRate: 24_000))) {
            _ = try MP3Encoder(options: options)
        }
        options.bitrate = 320_000  // an MPEG-1 rate; 24 kHz is MPEG-2, at most 160 kb/s
        #expect(throws: AudioEncodingError.self) { _ = try MP3Encoder(options: options) }
        let encoder = try MP3Encoder()
        #expect(throws: AudioEncodingError.sampleRateMismatch(expected: 24_000, got: 16_000)) {
            _ = try encoder.encode([0, 0], sampleRate: 16_000)
        }
        _ = try encoder.finalize()
        #expect(throws: AudioEncodingError.finalized(encoder: "MP3 encoder")) { _ = try encoder.encode([0]) }
        let message = "\(AudioEncodingError.unsupportedBitrate(65_000, sampleRate: 24_000, supported: MP3FrameHeader.bitrates(sampleRate: 24_000)))"
        print("typed error: \(message)")
        #expect(message.contains("64k"))
    }

    @Test func failedWritesLeaveNothingBehind() throws {
        let folder = try TemporaryDirectory()
        let missing = folder.filePath("no/such/folder/out.mp3")
        #expect(throws: AudioEncodingError.self) { try MP3File.write([0.1, 0.2], to: missing) }
        // An existing file is untouched when the encode itself fails.
        let existing = folder.filePath("keep.mp3")
        try Data("old".utf8).write(to: URL(fileURLWithPath: existing))
        #expect(throws: AudioEncodingError.self) { try MP3File.write([0.1], sampleRate: 22_000, to: existing) }
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        print("after two failed MP3 writes the folder holds \(left)")
        #expect(left == ["keep.mp3"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == Data("old".utf8))
    }

    @Test func frameHeaderParsesWhatLAMEWrites() throws {
        for (rate, bitrate) in [(24_000, 32_000), (24_000, 160_000), (48_000, 128_000), (16_000, 24_000)] {
            var options = MP3Encoder.Options()
            options.bitrate = bitrate
            let encoder = try MP3Encoder(sampleRate: rate, options: options)
            var stream = try encoder.encode(OggOpusTests.voice(seconds: 0.5, sampleRate: rate))
            stream.append(try encoder.finalize())
            let (frames, consumed) = try #require(MP3FrameHeader.splitFrames(stream))
            let header = try #require(MP3FrameHeader(frames[0]))
            print("MP3 \(rate) Hz \(bitrate / 1000)k: \(frames.count) frames of \(header.samplesPerFrame) samples, \(header.frameLength) bytes")
            #expect(consumed == stream.count && header.sampleRate == rate && header.bitrate == bitrate)
            #expect(header.samplesPerFrame == encoder.samplesPerFrame)
        }
        #expect(MP3FrameHeader([0x00, 0x01, 0x02, 0x03]) == nil)
    }
}
