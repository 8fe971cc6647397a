import CLame
import Foundation

/// A streaming constant-bit-rate MP3 encoder over LAME (mono, any MP3 sample rate; 24 kHz is
/// MPEG-2 Layer III with 576-sample frames): feed samples in any amounts, get back the whole MP3
/// frames completed so far.
///
/// Delay and padding: a decoder's output starts with `encoderDelay` + 529 (the decoder's own delay)
/// samples of priming before the first input sample, and the last frame is padded with
/// `encoderPadding` samples. With `writesInfoTag`, the first frame out is a placeholder that
/// `infoTag()` fills after `finalize()`: a LAME "Info" frame with the frame count and delay/padding,
/// from which gapless decoders (ffmpeg, browsers, most players) return exactly the input length.
public final class MP3Encoder: StreamingAudioEncoder {
    public struct Options: Sendable {
        /// Constant bit rate in b/s; one of `MP3FrameHeader.bitrates(sampleRate:)`.
        public var bitrate = 64_000
        /// LAME's algorithm quality, 0 (best, slowest) to 9; 2 is LAME's "high quality" preset.
        public var quality: Int32 = 2
        /// Emit a placeholder first frame for the LAME/Info tag (files; see `infoTag()`).
        public var writesInfoTag = false
        /// The bit reservoir lets a frame borrow bytes from earlier frames (better quality at a
        /// given rate) but then a frame cannot be decoded without its predecessor; the HLS segmenter
        /// turns it off so every segment decodes on its own.
        public var usesBitReservoir = true
        public init() {}
    }

    /// The rates LAME encodes without resampling (MPEG-1, MPEG-2 and MPEG-2.5 Layer III).
    public static let supportedSampleRates = [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000]

    public let sampleRate: Int
    public let options: Options
    public let mimeType = "audio/mpeg"
    public let fileExtension = "mp3"
    /// Samples per MP3 frame (576 at 24 kHz).
    public let samplesPerFrame: Int
    /// Samples of encoder priming before the first input sample (LAME's `encoder_delay`).
    public private(set) var encoderDelay: Int
    /// Zero samples appended after the last input sample to fill the last frame; known after `finalize()`.
    public private(set) var encoderPadding: Int?
    /// Input samples taken since the stream began.
    public private(set) var inputSampleCount = 0
    private var lame: OpaquePointer
    private var isFinalized = false

    public init(sampleRate: Int = 24_000, options: Options = Options()) throws {
        guard Self.supportedSampleRates.contains(sampleRate) else {
            throw AudioEncodingError.unsupportedSampleRate(sampleRate, encoder: "MP3 encoder", supported: Self.supportedSampleRates)
        }
        let bitrates = MP3FrameHeader.bitrates(sampleRate: sampleRate)
        guard bitrates.contains(options.bitrate) else {
            throw AudioEncodingError.unsupportedBitrate(options.bitrate, sampleRate: sampleRate, supported: bitrates)
        }
        self.sampleRate = sampleRate
        self.options = options
        lame = try Self.makeLAME(sampleRate: sampleRate, options: options)
        samplesPerFrame = Int(lame_get_framesize(lame))
        encoderDelay = Int(lame_get_encoder_delay(lame))
    }

    deinit { lame_close(lame) }

    private static func makeLAME(sampleRate: Int, options: Options) throws -> OpaquePointer {
        guard let lame = lame_init() else { throw AudioEncodingError.lame(call: "lame_init", code: -1) }
        lame_set_in_samplerate(lame, Int32(sampleRate))
        lame_set_out_samplerate(lame, Int32(sampleRate))  // never let LAME resample
        lame_set_num_channels(lame, 1)
        lame_set_mode(lame, MONO)
        lame_set_VBR(lame, vbr_off)
        lame_set_brate(lame, Int32(options.bitrate / 1000))
        lame_set_quality(lame, options.quality)
        lame_set_bWriteVbrTag(lame, options.writesInfoTag ? 1 : 0)
        lame_set_disable_reservoir(lame, options.usesBitReservoir ? 0 : 1)
        lame_set_write_id3tag_automatic(lame, 0)
        let code = lame_init_params(lame)
        guard code >= 0 else {
            lame_close(lame)
            throw AudioEncodingError.lame(call: "lame_init_params", code: code)
        }
        // LAME quietly picks the nearest legal rate; a different one would be a silent surprise.
        guard Int(lame_get_brate(lame)) * 1000 == options.bitrate, Int(lame_get_out_samplerate(lame)) == sampleRate else {
            lame_close(lame)
            throw AudioEncodingError.unsupportedBitrate(options.bitrate, sampleRate: sampleRate,
                                                        supported: MP3FrameHeader.bitrates(sampleRate: sampleRate))
        }
        return lame
    }

    /// Encodes `samples` (mono, clamped to [-1, 1], NaN as silence); returns the MP3 frames completed
    /// by this call (LAME holds back about a frame and a half of lookahead).
    public func encode(_ samples: [Float]) throws -> Data {
        guard !isFinalized else { throw AudioEncodingError.finalized(encoder: "MP3 encoder") }
        guard !samples.isEmpty else { return Data() }
        let input = EncoderInput.clamped(samples)
        inputSampleCount += input.count
        // LAME's bound on output: 1.25 × samples + 7200 bytes.
        var output = [UInt8](repeating: 0, count: input.count + input.count / 4 + 7200)
        let bytes = input.withUnsafeBufferPointer { pcm in
            lame_encode_buffer_ieee_float(lame, pcm.baseAddress, pcm.baseAddress, Int32(pcm.count), &output, Int32(output.count))
        }
        guard bytes >= 0 else { throw AudioEncodingError.lame(call: "lame_encode_buffer_ieee_float", code: bytes) }
        return Data(output.prefix(Int(bytes)))
    }

    /// Flushes LAME's lookahead (the last frame padded with silence) and ends the stream; returns the
    /// last frames. A stream given no samples is empty: no frames at all (LAME's flush would invent
    /// 1152 samples of silence, and no MP3 frame can say "zero samples"). A second call returns nothing.
    public func finalize() throws -> Data {
        guard !isFinalized else { return Data() }
        guard inputSampleCount > 0 else {
            isFinalized = true
            encoderPadding = 0
            return Data()
        }
        var output = [UInt8](repeating: 0, count: 7200)
        let bytes = lame_encode_flush(lame, &output, Int32(output.count))
        guard bytes >= 0 else { throw AudioEncodingError.lame(call: "lame_encode_flush", code: bytes) }
        isFinalized = true
        encoderPadding = Int(lame_get_encoder_padding(lame))
        return Data(output.prefix(Int(bytes)))
    }

    /// The LAME "Info" frame to write over the placeholder first frame, once `finalize()` has run
    /// (nil before, or without `writesInfoTag`).
    public func infoTag() -> Data? {
        guard isFinalized, options.writesInfoTag else { return nil }
        var frame = [UInt8](repeating: 0, count: 2880)
        let bytes = lame_get_lametag_frame(lame, &frame, frame.count)
        return bytes > 0 && bytes <= frame.count ? Data(frame.prefix(bytes)) : nil
    }

    /// Starts a new, independent MP3 stream with the same settings.
    public func reset() throws {
        let fresh = try Self.makeLAME(sampleRate: sampleRate, options: options)
        lame_close(lame)
        lame = fresh
        encoderDelay = Int(lame_get_encoder_delay(lame))
        encoderPadding = nil
        inputSampleCount = 0
        isFinalized = false
    }
}
