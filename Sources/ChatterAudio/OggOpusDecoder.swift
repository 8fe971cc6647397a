import COgg
import COpus
import Foundation

/// Decodes a mono Ogg Opus stream (RFC 7845) with libopus: pre-skip removed, trailing padding cut
/// at the final granule position. Any bytes are safe to pass: garbage, a truncated stream or a lying
/// header is `OggOpusError`, and a stream that would decode to more than `maxSeconds` of audio is
/// refused as it reaches that point (a 1-byte Opus packet can stand for 120 ms, so a small file can
/// ask for hours of samples).
public enum OggOpusDecoder {
    public static func decode(_ data: Data, sampleRate: Int = 24_000, maxSeconds: Double = 3_600) throws -> [Float] {
        guard [8_000, 12_000, 16_000, 24_000, 48_000].contains(sampleRate) else { throw OggOpusError.unsupportedSampleRate(sampleRate) }
        guard !data.isEmpty else { throw OggOpusError.invalidStream("no bytes") }
        let maxSamples = Int(max(0, min(maxSeconds, 86_400)) * Double(sampleRate))
        var sync = ogg_sync_state()
        ogg_sync_init(&sync)
        defer { ogg_sync_clear(&sync) }
        guard let buffer = ogg_sync_buffer(&sync, data.count) else { throw OggOpusError.invalidStream("libogg could not take \(data.count) bytes") }
        data.copyBytes(to: UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: data.count)
        ogg_sync_wrote(&sync, data.count)

        var stream = ogg_stream_state()
        var streamReady = false
        defer { if streamReady { ogg_stream_clear(&stream) } }
        var decoder: OpaquePointer?
        defer { if let decoder { opus_decoder_destroy(decoder) } }
        var preSkip = 0
        var packets = 0
        var lastGranule: Int64 = -1
        var samples: [Float] = []
        var frame = [Float](repeating: 0, count: sampleRate * 120 / 1000)

        var page = ogg_page()
        while ogg_sync_pageout(&sync, &page) == 1 {
            if !streamReady {
                ogg_stream_init(&stream, ogg_page_serialno(&page))
                streamReady = true
            }
            guard ogg_stream_pagein(&stream, &page) == 0 else { throw OggOpusError.invalidStream("a page of another stream or a damaged page") }
            var packet = ogg_packet()
            while ogg_stream_packetout(&stream, &packet) == 1 {
                let bytes = UnsafeBufferPointer(start: packet.packet, count: packet.bytes)
                defer { packets += 1 }
                if packets == 0 {
                    guard bytes.count >= 19, Array(bytes.prefix(8)) == Array("OpusHead".utf8) else { throw OggOpusError.invalidStream("no OpusHead header") }
                    guard bytes[9] == 1 else { throw OggOpusError.invalidStream("\(bytes[9]) channels; only mono is supported") }
                    preSkip = Int(bytes[10]) | Int(bytes[11]) << 8
                    var error: Int32 = 0
                    decoder = opus_decoder_create(Int32(sampleRate), 1, &error)
                    guard error == OPUS_OK else { throw OggOpusError.opus(call: "opus_decoder_create", code: error) }
                    continue
                }
                if packets == 1 {
                    guard bytes.count >= 8, Array(bytes.prefix(8)) == Array("OpusTags".utf8) else { throw OggOpusError.invalidStream("no OpusTags header") }
                    continue
                }
                guard let decoder else { throw OggOpusError.invalidStream("audio before the OpusHead header") }
                let decoded = opus_decode_float(decoder, packet.packet, Int32(packet.bytes), &frame, Int32(frame.count), 0)
                guard decoded >= 0 else { throw OggOpusError.opus(call: "opus_decode_float", code: decoded) }
                guard samples.count + Int(decoded) <= maxSamples else { throw OggOpusError.tooLong(maxSeconds: maxSeconds) }
                samples.append(contentsOf: frame.prefix(Int(decoded)))
                if packet.granulepos >= 0 { lastGranule = packet.granulepos }
            }
        }
        guard packets >= 2 else { throw OggOpusError.invalidStream("fewer than the two header packets (truncated?)") }
        let skip = min(samples.count, preSkip * sampleRate / 48_000)
        var end = samples.count
        if lastGranule >= 0 {
            // The granule position is the stream's claim (any Int64): scaled without overflow and
            // never past what was decoded.
            let audible = max(0, lastGranule - Int64(preSkip))  // 48 kHz samples
            let scaled = audible / 48_000 * Int64(sampleRate) + audible % 48_000 * Int64(sampleRate) / 48_000
            end = min(end, skip + Int(min(scaled, Int64(samples.count))))
        }
        return end > skip ? Array(samples[skip..<end]) : []
    }
}
