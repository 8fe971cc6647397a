import ChatterTensor

/// S3Gen over a growing token list, emitting 24 kHz samples as they become final: `FlowStream`
/// (prompt + tokens so far, a bounded left context, the last 3 tokens' frames held for their
/// lookahead, noise fixed per absolute frame) feeding `HiFTStream` (exact receptive-field overlap,
/// SineGen phases carried, trim_fade on the utterance's head).
///
/// Every token yields exactly `samplesPerToken` samples over the utterance: nothing is dropped or
/// blended at a seam. The one remaining difference from `render` (one call over all tokens) is
/// that the flow's attention is global, so frames emitted early were decoded without the tokens
/// that came later; the tests report how small that is.
public struct S3GenStream: Sendable {
    public private(set) var flow: FlowStream
    public private(set) var vocoder: HiFTStream

    /// - `maxContextTokens`: tokens re-decoded before the new ones (nil: all).
    /// - `maxPromptTokens`: prompt tokens the first push decodes unless it is the final one (the last
    ///   that many; nil: all); later pushes decode the whole prompt.
    /// - `vocoderContextFrames`: HiFT's receptive-field margin (frames).
    public init(s3gen: S3Gen, reference: FlowReference, steps: Int? = nil, noiseSeed: UInt64 = 0,
                drawSeed: UInt64 = 0, maxContextTokens: Int? = 200, maxPromptTokens: Int? = nil, vocoderContextFrames: Int = 16) {
        flow = FlowStream(flow: s3gen.flow, reference: reference, steps: steps, seed: noiseSeed,
                          maxContextTokens: maxContextTokens, maxPromptTokens: maxPromptTokens)
        vocoder = HiFTStream(vocoder: s3gen.vocoder, seed: drawSeed, contextFrames: vocoderContextFrames)
    }

    public var finished: Bool { vocoder.finished }
    public var emittedSamples: Int { vocoder.emittedSamples }
    public var tokens: [Int] { flow.tokens }
    /// What the pushes so far cost, in frames (`S3GenWork`).
    public var work: S3GenWork { S3GenWork(flow: flow.work, vocoderFrames: vocoder.vocodedFrames) }

    /// Appends speech tokens; returns the samples that became final (all that is left when `final`).
    public mutating func push(_ tokens: [Int], final: Bool = false) throws -> [Float] {
        let mel = try flow.push(tokens, final: final)
        return try vocoder.push(mel, final: final)
    }

    /// The whole utterance in one call, with the same noise and draws a stream uses: what streaming
    /// is measured against.
    public static func render(s3gen: S3Gen, tokens: [Int], reference: FlowReference, steps: Int? = nil,
                              noiseSeed: UInt64 = 0, drawSeed: UInt64 = 0) throws -> [Float] {
        try renderCounted(s3gen: s3gen, tokens: tokens, reference: reference, steps: steps, noiseSeed: noiseSeed,
                          drawSeed: drawSeed).samples
    }

    /// `render`, with the work it took (one flow call, each frame vocoded once).
    public static func renderCounted(s3gen: S3Gen, tokens: [Int], reference: FlowReference, steps: Int? = nil,
                                     noiseSeed: UInt64 = 0, drawSeed: UInt64 = 0) throws -> (samples: [Float], work: S3GenWork) {
        var stream = S3GenStream(s3gen: s3gen, reference: reference, steps: steps, noiseSeed: noiseSeed,
                                 drawSeed: drawSeed, maxContextTokens: nil)
        let samples = try stream.push(tokens, final: true)
        return (samples, stream.work)
    }
}

/// S3Gen's work over an utterance, counted rather than timed: the flow's frames (`FlowWork`) and
/// the mel frames HiFT vocoded. Streaming re-decodes the prompt and some left context on every push
/// and re-vocodes a receptive-field margin; `ratio(to:)` against one call over the same tokens is the
/// streaming tax.
public struct S3GenWork: Sendable, Equatable {
    public var flow: FlowWork
    public var vocoderFrames: Int

    public init(flow: FlowWork = FlowWork(), vocoderFrames: Int = 0) {
        self.flow = flow
        self.vocoderFrames = vocoderFrames
    }

    /// This work over `baseline`'s, per stage. `estimator` (CFM frames × steps) is the headline:
    /// the estimator is most of S3Gen's time, and the encoder's frames follow the same windows.
    public func ratio(to baseline: S3GenWork) -> (encoder: Double, estimator: Double, vocoder: Double) {
        (Double(flow.encoderFrames) / Double(max(baseline.flow.encoderFrames, 1)),
         Double(flow.estimatorFrameSteps) / Double(max(baseline.flow.estimatorFrameSteps, 1)),
         Double(vocoderFrames) / Double(max(baseline.vocoderFrames, 1)))
    }
}
