import ChatterAudio
import Foundation
import Testing
import TestSupport

/// The acceptance check for Ogg Opus: Debian's `opusinfo` (opus-tools), a real client,
/// validates our streams and reports the right pre-skip and playback length.
@Suite struct OggOpusAcceptanceTests {
    static let opusinfo = ExternalTool("opusinfo")

    /// "Playback length: 0m:01.536s" → seconds.
    static func playbackLength(_ report: String) -> Double? {
        guard let line = report.split(separator: "\n").first(where: { $0.contains("Playback length:") }) else { return nil }
        let value = line.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)  // 0m:01.536s
        let parts = value.dropLast().split(separator: ":")
        guard parts.count == 2, let minutes = Double(parts[0].dropLast()), let seconds = Double(parts[1]) else { return nil }
        return minutes * 60 + seconds
    }

    static func preSkip(_ report: String) -> Int? {
        report.split(separator: "\n").first(where: { $0.contains("Pre-skip:") })
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
    }

    @Test(.enabled(if: opusinfo != nil, "opusinfo (Debian opus-tools) is not installed; skipping the Ogg Opus acceptance check"),
          arguments: [0.0, 0.02, 1.537, 7.25])
    func opusinfoValidatesDurationAndPreSkip(seconds: Double) throws {
        let folder = try TemporaryDirectory()
        let input = OggOpusTests.voice(seconds: seconds)
        let encoder = try OggOpusEncoder()
        var stream = Data()
        // Streamed in pipeline-sized chunks (0.4 s, then 1 s) as the engine will.
        var offset = 0, size = 9_600
        while offset < input.count {
            stream.append(try encoder.encode(Array(input[offset..<min(input.count, offset + size)])))
            offset += size
            size = 24_000
        }
        stream.append(try encoder.finalize())
        try stream.write(to: folder.path("out.opus"))

        let result = try #require(Self.opusinfo).run([folder.filePath("out.opus")])
        let report = result.stdout + result.stderr
        let length = Self.playbackLength(report)
        print("opusinfo on \(seconds) s: pre-skip \(Self.preSkip(report).map(String.init) ?? "?") (ours \(encoder.preSkip)), playback length \(length.map { String($0) } ?? "?") s, exit \(result.status)")
        #expect(result.status == 0, "\(report)")
        #expect(!report.contains("WARNING") && !report.contains("ERROR"), "\(report)")
        #expect(Self.preSkip(report) == encoder.preSkip)
        #expect(encoder.preSkip == 312, "libopus's 24 kHz lookahead of 156 samples, at 48 kHz")
        // opusinfo truncates to whole milliseconds.
        let expected = Double(input.count) / 24_000
        #expect(length.map { abs($0 - expected) <= 0.001 } == true, "opusinfo says \(length ?? -1) s, input is \(expected) s")
    }
}

@Suite struct OggOpusStreamShapeTests {
    @Test func resetStartsAnIdenticalIndependentStream() throws {
        let input = OggOpusTests.voice(seconds: 0.5)
        let encoder = try OggOpusEncoder()
        var first = try encoder.encode(input)
        first.append(try encoder.finalize())
        #expect(try encoder.finalize().isEmpty, "a second finalize returns nothing")
        #expect(throws: OggOpusError.finished) { try encoder.encode(input) }
        try encoder.reset()
        var second = try encoder.encode(input)
        second.append(try encoder.finalize())
        print("Ogg Opus reset: first stream \(first.count) bytes, second \(second.count) bytes")
        #expect(first == second, "after reset the encoder makes the same stream from the same input")
        #expect(try OggOpusDecoder.decode(second).count == input.count)
    }

    @Test func nonFiniteSamplesAreClampedAndNaNIsSilence() throws {
        let encoder = try OggOpusEncoder()
        var loud = OggOpusTests.voice(seconds: 0.3)
        for i in stride(from: 0, to: loud.count, by: 97) { loud[i] = [Float.nan, .infinity, -.infinity, 5][i % 4] }
        var stream = try encoder.encode(loud)
        stream.append(try encoder.finalize())
        let decoded = try OggOpusDecoder.decode(stream)
        let peak = decoded.map { abs($0) }.max() ?? 0
        print("Ogg Opus with NaN/±inf/5.0 input: \(decoded.count) samples decoded, peak \(peak), all finite \(decoded.allSatisfy(\.isFinite))")
        #expect(decoded.count == loud.count && decoded.allSatisfy(\.isFinite))
        #expect(peak < 2, "clamped input cannot decode far beyond full scale")
    }
}
