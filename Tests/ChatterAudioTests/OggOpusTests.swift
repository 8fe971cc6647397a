import ChatterAudio
import Foundation
import Testing

@Suite struct OggOpusTests {
    /// A voiced, speech-like test signal (harmonics of a gliding pitch with a syllable envelope).
    static func voice(seconds: Double, sampleRate: Int = 24_000) -> [Float] {
        (0..<Int(seconds * Double(sampleRate))).map { i in
            let t = Double(i) / Double(sampleRate)
            let pitch = 120 + 30 * sin(2 * .pi * 0.7 * t)
            let envelope = 0.5 * (1 - cos(2 * .pi * 3 * t))
            var value = 0.0
            for harmonic in 1...8 { value += sin(2 * .pi * pitch * Double(harmonic) * t) / Double(harmonic) }
            return Float(0.25 * envelope * value)
        }
    }

    static func snr(_ reference: [Float], _ other: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for i in 0..<min(reference.count, other.count) {
            signal += Double(reference[i]) * Double(reference[i])
            let d = Double(reference[i]) - Double(other[i])
            noise += d * d
        }
        return 10 * log10(signal / max(noise, 1e-30))
    }

    @Test func roundTripKeepsEveryInputSampleAndNoMore() throws {
        let input = Self.voice(seconds: 1.537)  // not a whole number of 20 ms frames
        let encoder = try OggOpusEncoder()
        var stream = Data()
        // Streaming: chunks of odd sizes, each returning the pages it completed.
        var offset = 0
        for size in [1000, 7, 4800, 12345, 3] {
            stream.append(try encoder.encode(Array(input[offset..<min(input.count, offset + size)])))
            offset = min(input.count, offset + size)
        }
        stream.append(try encoder.encode(Array(input[offset...])))
        stream.append(try encoder.finalize())
        #expect(Array(stream.prefix(4)) == Array("OggS".utf8))
        let decoded = try OggOpusDecoder.decode(stream)
        #expect(decoded.count == input.count, "decoded \(decoded.count) samples for \(input.count)")
        let quality = Self.snr(input, decoded)
        let kilobitsPerSecond = Double(stream.count * 8) / 1.537 / 1000
        print("Ogg Opus 64 kb/s round trip: \(decoded.count) samples, SNR \(String(format: "%.1f", quality)) dB, \(String(format: "%.1f", kilobitsPerSecond)) kb/s incl. headers")
        #expect(quality > 10, "a transparent-ish codec at 64 kb/s on a harmonic signal")
        #expect(kilobitsPerSecond < 80)
        #expect(throws: OggOpusError.finished) { try encoder.encode([0]) }
    }

    @Test func shortAndEmptyStreams() throws {
        for count in [0, 1, 479, 480, 481] {
            let encoder = try OggOpusEncoder()
            var stream = try encoder.encode([Float](repeating: 0.1, count: count))
            stream.append(try encoder.finalize())
            #expect(try OggOpusDecoder.decode(stream).count == count)
        }
    }

    @Test func rejectsBadInput() throws {
        #expect(throws: OggOpusError.unsupportedSampleRate(22_050)) { _ = try OggOpusEncoder(sampleRate: 22_050) }
        #expect(throws: OggOpusError.self) { _ = try OggOpusDecoder.decode(Data("not an ogg stream".utf8)) }
        let encoder = try OggOpusEncoder()
        var stream = try encoder.encode(Self.voice(seconds: 0.2))
        stream.append(try encoder.finalize())
        // A truncated stream decodes what is whole, or reports the damage; it never crashes.
        for cut in [10, 60, stream.count / 2] {
            _ = try? OggOpusDecoder.decode(stream.prefix(cut))
        }
    }

    /// What the oggOpus fuzz target found (an empty input force-unwrapped libogg's nil buffer) and
    /// what a hostile file can claim: each is a typed error or a bounded answer, never a crash.
    @Test func hostileStreamsAreTypedErrorsOrBounded() throws {
        #expect(throws: OggOpusError.invalidStream("no bytes")) { _ = try OggOpusDecoder.decode(Data()) }
        let encoder = try OggOpusEncoder()
        var stream = try encoder.encode(Self.voice(seconds: 0.5))
        stream.append(try encoder.finalize())
        let honest = try OggOpusDecoder.decode(stream)
        // The last page claims the largest granule position: no overflow, and no sample that was not
        // decoded (at most the final frame's padding comes back uncut).
        let lying = try OggOpusDecoder.decode(Self.settingLastGranule(of: stream, to: .max))
        print("granule Int64.max: \(lying.count) samples (honest stream \(honest.count))")
        #expect(lying.count >= honest.count && lying.count <= honest.count + 24_000 * 120 / 1000)
        // More audio than the caller allows is refused while decoding, not after.
        #expect(throws: OggOpusError.tooLong(maxSeconds: 0.1)) { _ = try OggOpusDecoder.decode(stream, maxSeconds: 0.1) }
        #expect(try OggOpusDecoder.decode(stream, maxSeconds: 1).count == honest.count)
    }

    /// `stream` with its last page's granule position replaced (and the page's CRC recomputed, so
    /// libogg accepts the page).
    static func settingLastGranule(of stream: Data, to granule: Int64) -> Data {
        var bytes = [UInt8](stream)
        var start = bytes.count - 4
        while start > 0 && !(bytes[start] == 0x4F && bytes[start + 1] == 0x67 && bytes[start + 2] == 0x67 && bytes[start + 3] == 0x53) { start -= 1 }
        for i in 0..<8 { bytes[start + 6 + i] = UInt8(truncatingIfNeeded: UInt64(bitPattern: granule) >> (8 * UInt64(i))) }
        for i in 22..<26 { bytes[start + i] = 0 }
        var crc: UInt32 = 0  // Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial 0
        for byte in bytes[start...] {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
        }
        for i in 0..<4 { bytes[start + 22 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        return Data(bytes)
    }
}

import COgg

/// Page-level RFC 7845 rules, read back with libogg: the identification header alone on a
/// beginning-of-stream page, the comment header on its own page, granule positions that never
/// decrease, end-of-stream on the last page, and a final granule of pre-skip + input at 48 kHz.
/// (Checked by hand as well: opusinfo reports "Playback length: 0m:02.000s" and opusdec returns
/// exactly the 48 000 input samples for a 2 s stream.)
@Suite struct OggOpusStreamLayoutTests {
    @Test func pagesFollowRFC7845() throws {
        let input = OggOpusTests.voice(seconds: 1.0)
        let encoder = try OggOpusEncoder()
        var stream = try encoder.encode(Array(input[0..<9001]))
        stream.append(try encoder.encode(Array(input[9001...])))
        stream.append(try encoder.finalize())

        var sync = ogg_sync_state()
        ogg_sync_init(&sync)
        defer { ogg_sync_clear(&sync) }
        let buffer = ogg_sync_buffer(&sync, stream.count)!
        stream.copyBytes(to: UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: stream.count)
        ogg_sync_wrote(&sync, stream.count)
        var pages: [(bos: Bool, eos: Bool, granule: Int64, packets: Int32, body: [UInt8])] = []
        var page = ogg_page()
        while ogg_sync_pageout(&sync, &page) == 1 {
            pages.append((ogg_page_bos(&page) != 0, ogg_page_eos(&page) != 0, ogg_page_granulepos(&page), ogg_page_packets(&page),
                          Array(UnsafeBufferPointer(start: page.body, count: page.body_len))))
        }
        try #require(pages.count >= 3)
        #expect(pages[0].bos && pages[0].packets == 1 && Array(pages[0].body.prefix(8)) == Array("OpusHead".utf8))
        #expect(!pages[1].bos && pages[1].packets == 1 && pages[1].granule == 0 && Array(pages[1].body.prefix(8)) == Array("OpusTags".utf8))
        #expect(pages.dropFirst().allSatisfy { !$0.bos })
        #expect(pages.last!.eos && pages.dropLast().allSatisfy { !$0.eos })
        let granules = pages.dropFirst(2).map(\.granule)
        #expect(zip(granules, granules.dropFirst()).allSatisfy { $0 <= $1 }, "\(granules)")
        #expect(pages.last!.granule == Int64(encoder.preSkip + input.count * 2))
        let preSkip = Int(pages[0].body[10]) | Int(pages[0].body[11]) << 8
        #expect(preSkip == encoder.preSkip)
    }
}
