import COgg
import COpenBLAS
import COpus
import Foundation
import Testing

/// The Debian system libraries are found, link, and behave (catches a missing -dev package or a
/// broken module map before any model code needs them).
@Suite struct SystemLibraryTests {
    @Test func openBLASMultiplies() {
        let a: [Float] = [1, 2, 3, 4]  // row-major 2×2
        let b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        #expect(c == [19, 22, 43, 50])
    }

    @Test func opusEncodesAFrame() throws {
        var error: Int32 = 0
        let encoder = try #require(opus_encoder_create(48000, 1, OPUS_APPLICATION_AUDIO, &error))
        #expect(error == OPUS_OK)
        defer { opus_encoder_destroy(encoder) }
        let pcm: [Int16] = (0..<960).map { (i: Int) -> Int16 in Int16(8000 * sin(Double(i) * 2 * Double.pi * 440 / 48000)) }
        var packet = [UInt8](repeating: 0, count: 4000)
        let bytes = opus_encode(encoder, pcm, 960, &packet, 4000)
        #expect(bytes > 0)
    }

    @Test func oggPacksAPacket() {
        var stream = ogg_stream_state()
        #expect(ogg_stream_init(&stream, 1234) == 0)
        defer { ogg_stream_clear(&stream) }
        var payload: [UInt8] = Array("OpusHead".utf8)
        let count = payload.count
        let result = payload.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var packet = ogg_packet(packet: buffer.baseAddress, bytes: count, b_o_s: 1, e_o_s: 0, granulepos: 0, packetno: 0)
            return ogg_stream_packetin(&stream, &packet)
        }
        #expect(result == 0)
        var page = ogg_page()
        #expect(ogg_stream_flush(&stream, &page) != 0)
        #expect(page.header_len > 0 && page.body_len == count)
    }
}
