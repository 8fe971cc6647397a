import CAVCodec
import Foundation

/// One of FFmpeg's native audio encoders (libavcodec) fed mono samples in the frame size it wants;
/// the packets it completes come back in order. The containers (ADTS, FLAC's stream header) are
/// written by `AACEncoder` and `FLACEncoder`.
final class LibavcodecEncoder {
    private var context: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private let sampleFormat: AVSampleFormat
    let frameSize: Int
    private var pending: [Float] = []
    private var finished = false
    private let name: String

    init(codec name: String, sampleRate: Int, sampleFormat: AVSampleFormat, bitRate: Int? = nil) throws {
        self.name = name
        self.sampleFormat = sampleFormat
        guard let codec = avcodec_find_encoder_by_name(name) else {
            throw AudioEncodingError.libavcodec(call: "avcodec_find_encoder_by_name(\"\(name)\") (this libavcodec has no such encoder)", code: -1)
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw AudioEncodingError.libavcodec(call: "avcodec_alloc_context3", code: -1)
        }
        self.context = context
        context.pointee.sample_rate = Int32(sampleRate)
        context.pointee.sample_fmt = sampleFormat
        context.pointee.time_base = AVRational(num: 1, den: Int32(sampleRate))
        if let bitRate { context.pointee.bit_rate = Int64(bitRate) }
        chatter_codec_set_mono(context)
        let opened = avcodec_open2(context, codec, nil)
        guard opened >= 0 else {
            avcodec_free_context(&self.context)
            throw AudioEncodingError.libavcodec(call: "avcodec_open2(\(name), \(sampleRate) Hz)", code: opened)
        }
        packet = av_packet_alloc()
        frameSize = context.pointee.frame_size > 0 ? Int(context.pointee.frame_size) : 1024
    }

    deinit {
        av_packet_free(&packet)
        avcodec_free_context(&context)
    }

    /// The codec's extra data after opening (FLAC: its STREAMINFO block).
    var extradata: Data {
        guard let context, let bytes = context.pointee.extradata, context.pointee.extradata_size > 0 else { return Data() }
        return Data(bytes: bytes, count: Int(context.pointee.extradata_size))
    }

    /// Buffers `samples` and encodes every whole frame; returns the packets completed.
    func encode(_ samples: [Float]) throws -> [Data] {
        guard !finished else { throw AudioEncodingError.finalized(encoder: "\(name) encoder") }
        pending += samples.map(EncoderInput.clamped)
        var packets: [Data] = []
        while pending.count >= frameSize {
            packets += try send(Array(pending.prefix(frameSize)))
            pending.removeFirst(frameSize)
        }
        return packets
    }

    /// Encodes the last, short frame and drains the encoder.
    func finish() throws -> [Data] {
        guard !finished else { return [] }
        finished = true
        var packets: [Data] = []
        if !pending.isEmpty { packets += try send(pending) }
        pending = []
        let flushed = avcodec_send_frame(context, nil)
        guard flushed >= 0 else { throw AudioEncodingError.libavcodec(call: "avcodec_send_frame(flush)", code: flushed) }
        packets += try receivePackets()
        return packets
    }

    private func send(_ samples: [Float]) throws -> [Data] {
        var allocatedFrame = av_frame_alloc()
        defer { av_frame_free(&allocatedFrame) }
        guard let frame = allocatedFrame else { throw AudioEncodingError.libavcodec(call: "av_frame_alloc", code: -1) }
        frame.pointee.nb_samples = Int32(samples.count)
        frame.pointee.format = sampleFormat.rawValue
        frame.pointee.sample_rate = context!.pointee.sample_rate
        _ = chatter_frame_set_mono(frame)
        let allocated = av_frame_get_buffer(frame, 0)
        guard allocated >= 0, let plane = frame.pointee.data.0 else {
            throw AudioEncodingError.libavcodec(call: "av_frame_get_buffer", code: allocated)
        }
        switch sampleFormat {
        case AV_SAMPLE_FMT_S16:
            plane.withMemoryRebound(to: Int16.self, capacity: samples.count) { out in
                for (i, x) in samples.enumerated() { out[i] = EncoderInput.int16(x) }
            }
        default:  // AV_SAMPLE_FMT_FLTP / FLT: mono, one plane of floats
            plane.withMemoryRebound(to: Float.self, capacity: samples.count) { out in
                for (i, x) in samples.enumerated() { out[i] = x }
            }
        }
        let sent = avcodec_send_frame(context, frame)
        guard sent >= 0 else { throw AudioEncodingError.libavcodec(call: "avcodec_send_frame", code: sent) }
        return try receivePackets()
    }

    private func receivePackets() throws -> [Data] {
        var packets: [Data] = []
        while true {
            let received = avcodec_receive_packet(context, packet)
            if received == chatter_averror_eagain() || received == chatter_averror_eof() { return packets }
            guard received >= 0, let packet else { throw AudioEncodingError.libavcodec(call: "avcodec_receive_packet", code: received) }
            // FLAC's last packet may carry only side data (the final STREAMINFO) and no bytes.
            if let bytes = packet.pointee.data, packet.pointee.size > 0 {
                packets.append(Data(bytes: bytes, count: Int(packet.pointee.size)))
            }
            av_packet_unref(packet)
        }
    }
}

/// AAC-LC in ADTS frames (each frame carries its own 7-byte header, so the stream plays from any
/// frame and needs no container): FFmpeg's native AAC encoder at 64 kb/s mono. Like every AAC
/// stream without an edit list, decoders also output the encoder's 1024 priming samples.
public final class AACEncoder: StreamingAudioEncoder {
    public let sampleRate: Int
    public let mimeType = AudioFormat.aac.mimeType
    public let fileExtension = AudioFormat.aac.fileExtension
    private var codec: LibavcodecEncoder
    private let frequencyIndex: Int

    /// ADTS's sampling-frequency table (ISO/IEC 14496-3, 1.6.3.4).
    static let frequencies = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]

    public init(sampleRate: Int = 24_000, bitRate: Int = 64_000) throws {
        guard let index = Self.frequencies.firstIndex(of: sampleRate) else {
            throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "AAC encoder", supported: Self.frequencies)
        }
        self.sampleRate = sampleRate
        frequencyIndex = index
        codec = try LibavcodecEncoder(codec: "aac", sampleRate: sampleRate, sampleFormat: AV_SAMPLE_FMT_FLTP, bitRate: bitRate)
    }

    public func encode(_ samples: [Float]) throws -> Data { framed(try codec.encode(samples)) }
    public func finalize() throws -> Data { framed(try codec.finish()) }
    public func reset() throws { codec = try LibavcodecEncoder(codec: "aac", sampleRate: sampleRate, sampleFormat: AV_SAMPLE_FMT_FLTP, bitRate: 64_000) }

    private func framed(_ packets: [Data]) -> Data {
        var out = Data()
        for payload in packets {
            let length = payload.count + 7
            let profile = 1  // AAC LC (object type 2) − 1
            let channels = 1
            out.append(contentsOf: [
                0xFF, 0xF1,  // sync word, MPEG-4, layer 0, no CRC
                UInt8((profile << 6) | (frequencyIndex << 2) | (channels >> 2)),
                UInt8(((channels & 3) << 6) | (length >> 11)),
                UInt8((length >> 3) & 0xFF),
                UInt8(((length & 7) << 5) | 0x1F),  // buffer fullness 0x7FF: variable bit rate
                0xFC,  // one raw data block
            ])
            out.append(payload)
        }
        return out
    }
}

/// FLAC (FFmpeg's encoder, 16-bit): the "fLaC" marker and the STREAMINFO block, then frames as
/// they complete. A stream cannot go back to fill STREAMINFO's total length and MD5, so they stay
/// "unknown" (0), which the FLAC format allows; decoders read to the end.
public final class FLACEncoder: StreamingAudioEncoder {
    public let sampleRate: Int
    public let mimeType = AudioFormat.flac.mimeType
    public let fileExtension = AudioFormat.flac.fileExtension
    private var codec: LibavcodecEncoder
    private var headerSent = false

    public init(sampleRate: Int = 24_000) throws {
        guard sampleRate > 0, sampleRate <= 655_350 else {
            throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "FLAC encoder", supported: [])
        }
        self.sampleRate = sampleRate
        codec = try LibavcodecEncoder(codec: "flac", sampleRate: sampleRate, sampleFormat: AV_SAMPLE_FMT_S16)
    }

    public func encode(_ samples: [Float]) throws -> Data { try header() + codec.encode(samples).reduce(Data(), +) }
    /// 16-bit input is encoded losslessly (x / 32767 comes back as x through the encoder's ×32767).
    public func encode(_ samples: [Int16]) throws -> Data { try encode(samples.map { Float($0) / 32767 }) }
    public func finalize() throws -> Data { try header() + codec.finish().reduce(Data(), +) }
    public func reset() throws {
        codec = try LibavcodecEncoder(codec: "flac", sampleRate: sampleRate, sampleFormat: AV_SAMPLE_FMT_S16)
        headerSent = false
    }

    private func header() throws -> Data {
        guard !headerSent else { return Data() }
        let streamInfo = codec.extradata
        guard streamInfo.count == 34 else {
            throw AudioEncodingError.libavcodec(call: "FLAC STREAMINFO (\(streamInfo.count) bytes of extradata, expected 34)", code: -1)
        }
        headerSent = true
        // The only metadata block: last-block flag set, type 0 (STREAMINFO), 24-bit length 34.
        return Data("fLaC".utf8) + Data([0x80, 0x00, 0x00, 0x22]) + streamInfo
    }
}
