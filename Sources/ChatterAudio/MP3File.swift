import Foundation

/// Whole MP3 files: constant bit rate, with a LAME "Info" tag as the first frame so players know the
/// exact length and skip the encoder's delay and padding (gapless).
public enum MP3File {
    /// Encodes mono `samples` and writes them to `path` atomically: on any error nothing is left at
    /// `path` (an existing file there stays as it was). Samples are clamped to [-1, 1], NaN is silence.
    /// No samples is `AudioEncodingError.emptyAudio`: an MP3 file cannot hold zero samples (decoders
    /// reject a file without audio frames, and LAME's flush would add silence that was never asked for).
    public static func write(_ samples: [Float], sampleRate: Int = 24_000, to path: String,
                             options: MP3Encoder.Options = MP3Encoder.Options()) throws {
        guard !samples.isEmpty else { throw AudioEncodingError.emptyAudio(path: path, format: "MP3") }
        var options = options
        options.writesInfoTag = true
        let encoder = try MP3Encoder(sampleRate: sampleRate, options: options)
        var stream = try encoder.encode(samples)
        stream.append(try encoder.finalize())
        // The placeholder first frame is exactly the size of the tag frame that replaces it.
        guard let tag = encoder.infoTag(), MP3FrameHeader(stream)?.frameLength == tag.count else {
            throw AudioEncodingError.lame(call: "lame_get_lametag_frame (no Info frame matching the placeholder)", code: -1)
        }
        stream.replaceSubrange(stream.startIndex..<(stream.startIndex + tag.count), with: tag)
        if let reason = AtomicFile.write(stream, to: path) { throw AudioEncodingError.writeFailed(path: path, reason: reason) }
    }
}
