import COgg
import COpus
import Foundation

/// Errors from Opus encoding and Ogg Opus decoding.
public enum OggOpusError: Error, CustomStringConvertible, Equatable {
    case unsupportedSampleRate(Int)
    case opus(call: String, code: Int32)
    case invalidStream(String)
    /// The stream decodes to more than the `maxSeconds` the caller allowed.
    case tooLong(maxSeconds: Double)
    case finished

    public var description: String {
        switch self {
        case let .unsupportedSampleRate(rate):
            return "Opus cannot take \(rate) Hz audio (8000, 12000, 16000, 24000 or 48000)"
        case let .opus(call, code):
            return "\(call) failed: \(String(cString: opus_strerror(code)))"
        case let .invalidStream(reason):
            return "not a valid Ogg Opus stream: \(reason)"
        case let .tooLong(maxSeconds):
            return "the Ogg Opus stream is longer than the \(String(format: "%g", maxSeconds)) s allowed; pass a larger maxSeconds to decode it"
        case .finished:
            return "the Ogg Opus encoder is finalized; call reset() to start a new stream"
        }
    }
}

/// A streaming Ogg Opus encoder (RFC 7845, mono) with the Python package's encode / finalize / reset
/// shape: feed PCM in any amounts, get back the Ogg pages completed so far, so each audio chunk can go
/// out as soon as it is made. Opus takes 24 kHz natively, so nothing is resampled (the OpusHead
/// records the input rate); granule positions count 48 kHz samples as RFC 7845 requires, the
/// pre-skip is the encoder's lookahead scaled to 48 kHz, and the last (padded) frame's extra samples
/// are cut off by the final granule position, so a decoder returns exactly the samples given.
public final class OggOpusEncoder: StreamingAudioEncoder {
    public struct Options: Sendable {
        public var bitrate: Int32 = 64_000
        /// 2.5, 5, 10, 20, 40 or 60 ms; 20 ms is Opus's sweet spot.
        public var frameMilliseconds: Double = 20
        public var complexity: Int32 = 10
        /// Ogg logical stream serial number.
        public var serial: Int32 = 0x6368_6174  // "chat"
        public init() {}
    }

    public let sampleRate: Int
    public let options: Options
    public let mimeType = "audio/ogg"
    public let fileExtension = "opus"
    private let encoder: OpaquePointer
    private var stream = ogg_stream_state()
    private let frameSize: Int
    /// Encoder delay in 48 kHz samples (Ogg Opus granule units), written as the pre-skip.
    public let preSkip: Int
    private var pending: [Float] = []
    private var inputSamples = 0
    private var packetNumber: Int64 = 0
    private var headersWritten = false
    private var isFinished = false

    public init(sampleRate: Int = 24_000, options: Options = Options()) throws {
        guard [8_000, 12_000, 16_000, 24_000, 48_000].contains(sampleRate) else { throw OggOpusError.unsupportedSampleRate(sampleRate) }
        self.sampleRate = sampleRate
        self.options = options
        frameSize = Int((Double(sampleRate) * options.frameMilliseconds / 1000).rounded())
        var error: Int32 = 0
        guard let encoder = opus_encoder_create(Int32(sampleRate), 1, OPUS_APPLICATION_AUDIO, &error), error == OPUS_OK else {
            throw OggOpusError.opus(call: "opus_encoder_create", code: error)
        }
        self.encoder = encoder
        for (call, code) in [("OPUS_SET_BITRATE", chatter_opus_set_bitrate(encoder, options.bitrate)),
                             ("OPUS_SET_COMPLEXITY", chatter_opus_set_complexity(encoder, options.complexity)),
                             ("OPUS_SET_SIGNAL", chatter_opus_set_signal_voice(encoder))] where code != OPUS_OK {
            opus_encoder_destroy(encoder)
            throw OggOpusError.opus(call: call, code: code)
        }
        var lookahead: Int32 = 0
        _ = chatter_opus_get_lookahead(encoder, &lookahead)
        preSkip = Int(lookahead) * 48_000 / sampleRate
        ogg_stream_init(&stream, options.serial)
    }

    deinit {
        opus_encoder_destroy(encoder)
        ogg_stream_clear(&stream)
    }

    /// Encodes `samples` (mono, clamped to [-1, 1], NaN as silence); returns the Ogg pages completed
    /// by this call (the identification and comment headers come with the first call). Throws
    /// `OggOpusError.finished` after `finalize()`.
    public func encode(_ samples: [Float]) throws -> Data {
        guard !isFinished else { throw OggOpusError.finished }
        var output = headersWritten ? Data() : writeHeaders()
        pending.append(contentsOf: EncoderInput.clamped(samples))
        inputSamples += samples.count
        var consumed = 0
        while pending.count - consumed >= frameSize {
            try encodeFrame(Array(pending[consumed..<(consumed + frameSize)]), last: false)
            consumed += frameSize
        }
        pending.removeFirst(consumed)
        output.append(flushPages())
        return output
    }

    /// Encodes what is buffered and ends the stream. The encoder's lookahead is flushed with
    /// silence (else the last few milliseconds of input would never come out of a decoder), the last
    /// frame is padded, and the final granule position trims all of that away. Returns the
    /// remaining pages; a stream given no samples is still a valid (empty) Ogg Opus stream. A
    /// second call returns nothing, as in the Python package.
    public func finalize() throws -> Data {
        guard !isFinished else { return Data() }
        var output = headersWritten ? Data() : writeHeaders()
        var frames: [[Float]] = []
        var rest = pending + [Float](repeating: 0, count: preSkip * sampleRate / 48_000)
        while rest.count > frameSize { frames.append(Array(rest.prefix(frameSize))); rest.removeFirst(frameSize) }
        // Always at least one packet carries end-of-stream; pad it to a whole frame.
        frames.append(rest + [Float](repeating: 0, count: frameSize - rest.count))
        for (index, frame) in frames.enumerated() { try encodeFrame(frame, last: index == frames.count - 1) }
        pending = []
        isFinished = true
        output.append(flushPages())
        return output
    }

    /// Starts a new, independent stream: the Opus state is cleared, the next `encode` writes the
    /// headers again and granule positions restart from zero.
    public func reset() throws {
        let code = chatter_opus_reset_state(encoder)
        guard code == OPUS_OK else { throw OggOpusError.opus(call: "OPUS_RESET_STATE", code: code) }
        ogg_stream_reset(&stream)
        pending = []
        inputSamples = 0
        packetNumber = 0
        headersWritten = false
        isFinished = false
    }

    private func encodeFrame(_ frame: [Float], last: Bool) throws {
        var packet = [UInt8](repeating: 0, count: 4000)
        let bytes = opus_encode_float(encoder, frame, Int32(frameSize), &packet, Int32(packet.count))
        guard bytes > 0 else { throw OggOpusError.opus(call: "opus_encode_float", code: bytes) }
        let encodedSoFar = Int(packetNumber - 2) * frameSize  // packets 0 and 1 are the headers
        let framesEnd = encodedSoFar + frameSize
        // Granule (RFC 7845 §4): 48 kHz samples a decoder has produced by the end of this packet,
        // counting the pre-skip ones it will drop. The last packet's granule is pre-skip + real
        // input only, which tells decoders to drop the padding too.
        let granule = last ? preSkip + inputSamples * 48_000 / sampleRate : framesEnd * 48_000 / sampleRate
        try packetIn(Array(packet.prefix(Int(bytes))), granule: Int64(granule), endOfStream: last)
    }

    private func writeHeaders() -> Data {
        var head = Data("OpusHead".utf8)
        head.append(1)  // version
        head.append(1)  // channels
        head.append(contentsOf: withUnsafeBytes(of: UInt16(preSkip).littleEndian, Array.init))
        head.append(contentsOf: withUnsafeBytes(of: UInt32(sampleRate).littleEndian, Array.init))
        head.append(contentsOf: [0, 0])  // output gain
        head.append(0)  // channel mapping family 0
        var tags = Data("OpusTags".utf8)
        let vendor = Array("chatterstream (\(String(cString: opus_get_version_string())))".utf8)
        tags.append(contentsOf: withUnsafeBytes(of: UInt32(vendor.count).littleEndian, Array.init))
        tags.append(contentsOf: vendor)
        tags.append(contentsOf: withUnsafeBytes(of: UInt32(0).littleEndian, Array.init))
        try? packetIn(Array(head), granule: 0, endOfStream: false, beginning: true)
        var output = flushPages()  // the identification header is alone on the first page
        try? packetIn(Array(tags), granule: 0, endOfStream: false)
        output.append(flushPages())  // the comment header ends its page
        headersWritten = true
        return output
    }

    private func packetIn(_ payload: [UInt8], granule: Int64, endOfStream: Bool, beginning: Bool = false) throws {
        var bytes = payload
        let result = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var packet = ogg_packet(packet: buffer.baseAddress, bytes: buffer.count, b_o_s: beginning ? 1 : 0,
                                    e_o_s: endOfStream ? 1 : 0, granulepos: granule, packetno: packetNumber)
            return ogg_stream_packetin(&stream, &packet)
        }
        guard result == 0 else { throw OggOpusError.invalidStream("ogg_stream_packetin failed") }
        packetNumber += 1
    }

    private func flushPages() -> Data {
        var output = Data()
        var page = ogg_page()
        while ogg_stream_flush(&stream, &page) != 0 {
            output.append(page.header, count: page.header_len)
            output.append(page.body, count: page.body_len)
        }
        return output
    }
}
