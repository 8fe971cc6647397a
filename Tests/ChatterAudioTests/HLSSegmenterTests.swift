import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

/// A reader for what the segmenter writes: TS packets by PID, PSI sections, PES timestamps.
struct TransportStreamPacket {
    let pid: Int
    let unitStart: Bool
    let continuity: Int
    let hasPayload: Bool
    let pcr: Int64?
    let randomAccess: Bool
    let payload: [UInt8]

    init?(_ p: ArraySlice<UInt8>) {
        let b = Array(p)
        guard b.count == 188, b[0] == 0x47 else { return nil }
        pid = Int(b[1] & 0x1F) << 8 | Int(b[2])
        unitStart = b[1] & 0x40 != 0
        continuity = Int(b[3] & 0x0F)
        let control = (b[3] >> 4) & 3
        hasPayload = control & 1 != 0
        var offset = 4
        var pcr: Int64?
        var randomAccess = false
        if control & 2 != 0 {
            let length = Int(b[4])
            if length > 0 {
                randomAccess = b[5] & 0x40 != 0
                if b[5] & 0x10 != 0 {
                    pcr = Int64(b[6]) << 25 | Int64(b[7]) << 17 | Int64(b[8]) << 9 | Int64(b[9]) << 1 | Int64(b[10] >> 7)
                }
            }
            offset = 5 + length
        }
        self.pcr = pcr
        self.randomAccess = randomAccess
        payload = Array(b[offset...])
    }

    static func parse(_ data: Data) -> [TransportStreamPacket]? {
        let bytes = [UInt8](data)
        guard bytes.count % 188 == 0 else { return nil }
        var packets: [TransportStreamPacket] = []
        for start in stride(from: 0, to: bytes.count, by: 188) {
            guard let packet = TransportStreamPacket(bytes[start..<(start + 188)]) else { return nil }
            packets.append(packet)
        }
        return packets
    }

    /// CRC-32/MPEG-2 of a whole section, CRC included: zero when intact.
    static func crcResidue(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
        }
        return crc
    }

    /// The PSI section in a unit-start packet (after the pointer field).
    var section: [UInt8] {
        let start = 1 + Int(payload[0])
        let length = (Int(payload[start + 1] & 0x0F) << 8) | Int(payload[start + 2])
        return Array(payload[start..<(start + 3 + length)])
    }

    /// The PTS of a PES that starts in this packet.
    var pts: Int64? {
        guard unitStart, payload.count >= 14, payload[0...2] == [0, 0, 1], payload[7] & 0x80 != 0 else { return nil }
        let p = payload[9...13].map(Int64.init)
        return (p[0] >> 1 & 7) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
    }
}

@Suite struct HLSSegmenterTests {
    static let ffmpeg = ExternalTool("ffmpeg")
    static let ffprobe = ExternalTool("ffprobe")

    /// A 6.3 s stream: the voice signal with SplitMix64 noise under it, in pipeline-like chunks
    /// (0.4 s first, then 1 s, the last partial).
    static func chunks() -> [[Float]] {
        var random = SplitMix64(seed: 8)
        let signal = OggOpusTests.voice(seconds: 6.3).map { $0 + 0.02 * random.nextFloat() }
        var chunks: [[Float]] = [Array(signal[0..<9_600])]
        var offset = 9_600
        while offset < signal.count {
            chunks.append(Array(signal[offset..<min(signal.count, offset + 24_000)]))
            offset += 24_000
        }
        return chunks
    }

    static func segmented() throws -> (HLSSegmenter, inputSamples: Int, returned: [Data]) {
        let segmenter = try HLSSegmenter()
        var returned: [Data] = []
        var count = 0
        for chunk in chunks() {
            count += chunk.count
            let segment = try segmenter.addSegment(chunk)
            if !segment.isEmpty { returned.append(segment) }
        }
        if let last = try segmenter.finalize() { returned.append(last) }
        return (segmenter, count, returned)
    }

    @Test func transportStreamIsWellFormedAndContinuousAcrossSegments() throws {
        let (segmenter, inputSamples, returned) = try Self.segmented()
        #expect(segmenter.segmentCount == returned.count)
        #expect((0..<segmenter.segmentCount).map { segmenter.segment(at: $0)! } == returned)
        #expect(segmenter.segment(at: segmenter.segmentCount) == nil && segmenter.segment(at: -1) == nil)

        var counters: [Int: Int] = [:]
        var previousPTS: Int64?
        var audioFrames = 0
        var allElementary = Data()
        var ptsSteps: Set<Int64> = []
        for (index, segment) in returned.enumerated() {
            let packets = try #require(TransportStreamPacket.parse(segment), "segment \(index) is not whole 188-byte packets")
            // Each segment starts with PAT then PMT, so a player can start at any one.
            #expect(packets[0].pid == 0 && packets[1].pid == 0x1000)
            for packet in packets.prefix(2) {
                #expect(TransportStreamPacket.crcResidue(packet.section) == 0, "PSI CRC of PID \(packet.pid)")
            }
            let pmt = packets[1].section
            #expect(pmt[12] == 0x04, "stream_type MPEG-2 audio for 24 kHz MP3")
            #expect(Int(pmt[8] & 0x1F) << 8 | Int(pmt[9]) == 0x100, "PCR on the audio PID")
            #expect(packets[2].randomAccess && packets[2].pcr != nil)
            #expect(packets.count >= 11, "enough packets for content sniffing to recognise MPEG-TS")
            for packet in packets where packet.pid != 0x1FFF {
                if let last = counters[packet.pid] { #expect(packet.continuity == (last + 1) % 16, "CC of PID \(packet.pid) in segment \(index)") }
                counters[packet.pid] = packet.continuity
                guard packet.pid == 0x100, let pts = packet.pts else { continue }
                #expect(packet.pcr.map { $0 <= pts } == true, "a PCR leads every PES")
                if let previousPTS { ptsSteps.insert(pts - previousPTS) }
                previousPTS = pts
            }
            // Frames in the segment, by walking the PES payloads.
            var elementary = [UInt8]()
            for packet in packets where packet.pid == 0x100 {
                elementary += packet.unitStart ? Array(packet.payload[14...]) : packet.payload
            }
            let (frames, consumed) = try #require(MP3FrameHeader.splitFrames(Data(elementary)))
            #expect(consumed == elementary.count, "segment \(index) holds whole MP3 frames only")
            allElementary.append(contentsOf: elementary)
            #expect(abs(Double(frames.count * 576) / 24_000 - segmenter.segmentDurations[index]) < 1e-9)
            audioFrames += frames.count
        }
        // One encoder across segments: the segments' MP3 frames are byte for byte one uncut encode.
        var options = MP3Encoder.Options()
        options.usesBitReservoir = false
        let oneShot = try MP3Encoder(options: options)
        let whole = try oneShot.encode(Self.chunks().flatMap { $0 }) + oneShot.finalize()
        #expect(allElementary == whole, "segmented \(allElementary.count) bytes vs one-shot \(whole.count) bytes")
        let carried = segmenter.segmentDurations.reduce(0, +)
        print("HLS: elementary stream \(allElementary == whole ? "identical to" : "DIFFERENT from") a one-shot encode (\(whole.count) bytes); \(returned.count) segments, durations \(segmenter.segmentDurations.map { String(format: "%.3f", $0) }), \(audioFrames) frames, PTS steps \(ptsSteps.sorted()), carried \(carried) s for \(Double(inputSamples) / 24_000) s input (delay \(segmenter.encoderDelay))")
        #expect(ptsSteps.allSatisfy { $0 > 0 && $0 % 2160 == 0 }, "PTS advance by whole 576-sample frames at 90 kHz")
        #expect(ptsSteps.max()! <= 3 * 2160, "a PCR at least every 100 ms")
        #expect(Double(audioFrames * 576) >= Double(inputSamples + segmenter.encoderDelay))
    }

    @Test func playlistFollowsTheSegments() throws {
        let (segmenter, _, _) = try Self.segmented()
        let text = segmenter.playlist()
        print(text)
        let lines = text.split(separator: "\n").map(String.init)
        let target = Int(segmenter.segmentDurations.max()!.rounded(.up))
        #expect(lines.prefix(4) == ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:\(target)", "#EXT-X-MEDIA-SEQUENCE:0"])
        #expect(lines.last == "#EXT-X-ENDLIST")
        let durations = lines.filter { $0.hasPrefix("#EXTINF:") }.map { Double($0.dropFirst(8).dropLast())! }
        #expect(durations.count == segmenter.segmentCount)
        #expect(zip(durations, segmenter.segmentDurations).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(lines.filter { $0.hasSuffix(".ts") } == (0..<segmenter.segmentCount).map { "seg\($0).ts" })
        #expect(segmenter.playlist(segmentURI: { "/tts/abc/\($0).ts" }).contains("/tts/abc/0.ts"))
    }

    @Test(.enabled(if: ffmpeg != nil && ffprobe != nil, "ffmpeg/ffprobe are not installed; skipping the HLS client check"))
    func ffmpegPlaysThePlaylistWithTheRightDuration() throws {
        let folder = try TemporaryDirectory()
        let (segmenter, inputSamples, returned) = try Self.segmented()
        for (index, segment) in returned.enumerated() { try segment.write(to: folder.path("seg\(index).ts")) }
        try Data(segmenter.playlist().utf8).write(to: folder.path("playlist.m3u8"))

        // The issue's client check: decode everything; any warning or error counts as a problem.
        let play = try #require(Self.ffmpeg).run(["-hide_banner", "-nostdin", "-v", "warning", "-stats",
                                                  "-i", folder.filePath("playlist.m3u8"), "-f", "null", "-"])
        let problems = play.stderr.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .filter { !$0.contains("time=") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        let timeField = play.stderr.components(separatedBy: "time=").last?.prefix(11) ?? ""
        let hms = timeField.split(separator: ":").compactMap { Double($0) }
        let reported = hms.count == 3 ? hms[0] * 3600 + hms[1] * 60 + hms[2] : -1
        // Exact count: decode the playlist to raw samples.
        let decode = try #require(Self.ffmpeg).run(["-hide_banner", "-nostdin", "-v", "error", "-i", folder.filePath("playlist.m3u8"),
                                                    "-f", "s16le", folder.filePath("all.raw")])
        let raw = (try? Data(contentsOf: folder.path("all.raw"))) ?? Data()
        let decodedSamples = raw.count / 2
        // Seams: the decoded stream, shifted by the priming, against the input across every segment
        // boundary (a gap or re-priming at a seam would wreck the SNR).
        let decoded = raw.withUnsafeBytes { bytes in
            (0..<decodedSamples).map { Float(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) / 32768 }
        }
        let priming = segmenter.encoderDelay + 529
        let snr = OggOpusTests.snr(Self.chunks().flatMap { $0 }, Array(decoded.dropFirst(priming)))
        let input = Double(inputSamples) / 24_000
        let carried = segmenter.segmentDurations.reduce(0, +)
        // Tolerance: the decoded stream is the input plus LAME's priming (encoder delay + the
        // decoder's 529) at the start and under one frame of padding at the end.
        let tolerance = Double(segmenter.encoderDelay + 529 + 576) / 24_000
        print("ffmpeg on the playlist: time=\(timeField) (\(reported) s), \(decodedSamples) samples = \(Double(decodedSamples) / 24_000) s; input \(input) s, playlist \(carried) s, tolerance +\(tolerance) s; problems: \(problems)")
        print("HLS decoded against the input (shifted by \(priming) samples of priming): SNR \(String(format: "%.1f", snr)) dB across \(returned.count - 1) seams")
        #expect(snr > 10, "no gap or re-priming at segment seams")
        #expect(play.status == 0 && decode.status == 0, "\(play.stderr)\(decode.stderr)")
        #expect(problems.isEmpty, "ffmpeg reported: \(problems)")
        #expect(decode.stderr.isEmpty, "\(decode.stderr)")
        #expect(decodedSamples == Int((carried * 24_000).rounded()), "ffmpeg decodes exactly the frames the playlist announces")
        #expect(Double(decodedSamples) / 24_000 >= input && Double(decodedSamples) / 24_000 - input <= tolerance)
        #expect(abs(reported - Double(decodedSamples) / 24_000) <= 0.011, "the -f null run reports the same length (10 ms resolution)")

        // Each segment on its own: ffprobe finds one 24 kHz mono MP3 stream and every frame.
        for index in returned.indices {
            let probe = try #require(Self.ffprobe).run(["-v", "warning", "-count_frames", "-show_entries",
                                                        "stream=codec_name,sample_rate,channels,nb_read_frames",
                                                        "-of", "default=noprint_wrappers=1", folder.filePath("seg\(index).ts")])
            let fields = Dictionary(probe.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
                let kv = line.split(separator: "=", maxSplits: 1)
                return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
            }, uniquingKeysWith: { first, _ in first })
            let expectedFrames = Int((segmenter.segmentDurations[index] * 24_000 / 576).rounded())
            print("ffprobe seg\(index).ts: \(fields) (expected \(expectedFrames) frames)\(probe.stderr.isEmpty ? "" : " stderr: \(probe.stderr)")")
            #expect(probe.status == 0 && probe.stderr.isEmpty)
            #expect(fields["codec_name"] == "mp3" && fields["sample_rate"] == "24000" && fields["channels"] == "1")
            #expect(fields["nb_read_frames"] == String(expectedFrames))
        }
    }

    @Test func emptyStreamHasNoSegmentsAndAnEndedPlaylist() throws {
        let segmenter = try HLSSegmenter()
        #expect(try segmenter.addSegment([]).isEmpty)
        #expect(try segmenter.finalize() == nil)
        #expect(try segmenter.finalize() == nil, "a second finalize does nothing")
        let playlist = segmenter.playlist()
        print("empty HLS playlist:\n\(playlist)")
        #expect(segmenter.segmentCount == 0 && segmenter.segmentDurations.isEmpty)
        #expect(playlist.contains("#EXT-X-TARGETDURATION:1") && playlist.hasSuffix("#EXT-X-ENDLIST\n") && !playlist.contains("#EXTINF"))
        #expect(throws: AudioEncodingError.finalized(encoder: "HLS segmenter")) { _ = try segmenter.addSegment([0.1]) }
    }

    @Test func tinyFirstChunkCarriesIntoTheNextSegment() throws {
        let segmenter = try HLSSegmenter()
        let first = try segmenter.addSegment([Float](repeating: 0.1, count: 100))
        #expect(first.isEmpty && segmenter.segmentCount == 0, "100 samples complete no MP3 frame yet")
        #expect(!segmenter.playlist().contains("#EXT-X-ENDLIST"))
        let second = try segmenter.addSegment(OggOpusTests.voice(seconds: 1))
        try segmenter.finalize()
        print("tiny first chunk: segments \(segmenter.segmentCount), durations \(segmenter.segmentDurations)")
        #expect(!second.isEmpty && segmenter.segmentCount == 2)
        #expect(throws: AudioEncodingError.oddPCMByteCount(3)) { _ = try HLSSegmenter().addSegment(pcm16LittleEndian: Data([1, 2, 3])) }
        #expect(throws: AudioEncodingError.sampleRateMismatch(expected: 24_000, got: 22_050)) {
            _ = try HLSSegmenter().addSegment([0.1], sampleRate: 22_050)
        }
        #expect(throws: AudioEncodingError.self) { _ = try HLSSegmenter(sampleRate: 44_000) }
    }
}
