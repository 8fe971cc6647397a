import Foundation

/// Cuts a stream of mono PCM into HLS media segments (MPEG-TS carrying MP3, which every common HLS
/// player decodes) plus the m3u8 playlist, with the Python package's shape: `addSegment`,
/// `segmentCount`, `segmentDurations`, `segment(at:)`, `finalize`, `playlist`.
///
/// One MP3 encoder runs for the whole stream, so there is no gap or re-priming at segment seams, and
/// segments are cut on MP3 frame boundaries. LAME holds back about a frame and a half of lookahead,
/// so a segment carries the frames completed by its call (the first segment is shorter by the
/// encoder delay, the one `finalize` makes carries the rest); each playlist duration is the audio the
/// segment actually carries (frames × samples per frame). The bit reservoir is off, so every segment
/// decodes on its own (a player may join or seek at any segment). Segments, once returned, never
/// change (a live client may already have fetched them).
public final class HLSSegmenter {
    public struct Options: Sendable {
        /// Constant MP3 bit rate in b/s (see `MP3FrameHeader.bitrates(sampleRate:)`).
        public var bitrate = 64_000
        /// LAME quality, 0 (best) to 9.
        public var quality: Int32 = 2
        public init() {}
    }

    public static let segmentMIMEType = "video/mp2t"
    public static let playlistMIMEType = "application/vnd.apple.mpegurl"

    public let sampleRate: Int
    private let encoder: MP3Encoder
    private var writer: MPEGTransportStreamWriter
    /// Encoder output not yet making up a whole frame.
    private var pendingBytes = Data()
    /// Frames already placed in segments (the next segment's first frame number).
    private var framesWritten = 0
    private var segments: [Data] = []
    private var durations: [Double] = []
    public private(set) var isFinalized = false

    public init(sampleRate: Int = 24_000, options: Options = Options()) throws {
        var encoderOptions = MP3Encoder.Options()
        encoderOptions.bitrate = options.bitrate
        encoderOptions.quality = options.quality
        encoderOptions.usesBitReservoir = false
        encoder = try MP3Encoder(sampleRate: sampleRate, options: encoderOptions)
        self.sampleRate = sampleRate
        writer = MPEGTransportStreamWriter(sampleRate: sampleRate, samplesPerFrame: encoder.samplesPerFrame)
    }

    public var segmentCount: Int { segments.count }
    /// Seconds of audio in each segment.
    public var segmentDurations: [Double] { durations }
    /// The encoder's priming, in samples, at the start of the first segment (plus a decoder's 529).
    public var encoderDelay: Int { encoder.encoderDelay }

    /// Encodes `samples` through the persistent encoder and returns the new segment (also kept for
    /// `segment(at:)`). Returns empty data and adds no segment when no MP3 frame was completed yet
    /// (empty input, or less than LAME's lookahead at the very start): those samples go out with the
    /// next segment. Throws after `finalize()`.
    public func addSegment(_ samples: [Float]) throws -> Data {
        guard !isFinalized else { throw AudioEncodingError.finalized(encoder: "HLS segmenter") }
        return try appendSegment(encoder.encode(samples))
    }

    /// `addSegment` for a chunk that states its rate; another rate than the segmenter's is a typed
    /// error, never a silent pitch shift.
    public func addSegment(_ samples: [Float], sampleRate rate: Int) throws -> Data {
        guard rate == sampleRate else { throw AudioEncodingError.sampleRateMismatch(expected: sampleRate, got: rate) }
        return try addSegment(samples)
    }

    /// `addSegment` for little-endian 16-bit PCM bytes (the Python package's `add_segment(pcm_bytes)`).
    public func addSegment(pcm16LittleEndian bytes: Data) throws -> Data {
        guard bytes.count % 2 == 0 else { throw AudioEncodingError.oddPCMByteCount(bytes.count) }
        let samples = bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 2)).map { Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) / 32768 }
        }
        return try addSegment(samples)
    }

    /// The segment at `index`, or nil when there is none.
    public func segment(at index: Int) -> Data? {
        segments.indices.contains(index) ? segments[index] : nil
    }

    /// Flushes the encoder; the frames it releases become one last segment, which is returned (nil
    /// when nothing remained, e.g. a stream that was never given samples: it has no segments). After
    /// this the playlist ends with `#EXT-X-ENDLIST`. A second call does nothing.
    @discardableResult
    public func finalize() throws -> Data? {
        guard !isFinalized else { return nil }
        let tail = try appendSegment(encoder.finalize())
        isFinalized = true
        return tail.isEmpty ? nil : tail
    }

    /// The m3u8 media playlist for the segments so far; `segmentURI` names segment i
    /// (default `seg<i>.ts`, as the Python package).
    public func playlist(segmentURI: (Int) -> String = { "seg\($0).ts" }) -> String {
        let target = max(1, Int((durations.max() ?? 1).rounded(.up)))
        var lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:\(target)", "#EXT-X-MEDIA-SEQUENCE:0",
                     "#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-START:TIME-OFFSET=0"]
        for (index, duration) in durations.enumerated() {
            lines.append("#EXTINF:\(String(format: "%.6f", duration)),")
            lines.append(segmentURI(index))
        }
        if isFinalized { lines.append("#EXT-X-ENDLIST") }
        return lines.joined(separator: "\n") + "\n"
    }

    private func appendSegment(_ encoded: Data) throws -> Data {
        pendingBytes.append(encoded)
        guard let (frames, consumed) = MP3FrameHeader.splitFrames(pendingBytes) else {
            throw AudioEncodingError.lame(call: "MP3 frame sync (LAME produced bytes that are not a frame)", code: -1)
        }
        pendingBytes = Data(pendingBytes.dropFirst(consumed))
        guard !frames.isEmpty else { return Data() }
        let segment = writer.segment(frames: frames, firstFrame: framesWritten)
        framesWritten += frames.count
        segments.append(segment)
        durations.append(Double(frames.count * encoder.samplesPerFrame) / Double(sampleRate))
        return segment
    }
}
