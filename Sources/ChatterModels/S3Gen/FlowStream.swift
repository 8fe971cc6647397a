import ChatterTensor

/// Incremental S3Gen flow decoding (reference §8.4): each push re-runs the flow on prompt + every
/// token so far and emits the mel frames not emitted before, holding back the frames of the last
/// `lookahead` tokens (3 tokens = 6 frames) until their future tokens exist or the stream ends.
///
/// The noise is `FlowNoise` indexed by absolute decoder frame, so a frame sees the same z on every
/// call. Frames emitted earlier would still change slightly with more tokens (attention is global):
/// that is the seam the vocoder's overlap hides. The last push (`final: true`) decodes exactly what a
/// one-shot `inference(…, finalize: true)` over the same tokens does.
public struct FlowStream: Sendable {
    public let flow: S3GenFlow
    public let reference: FlowReference
    public let steps: Int
    public let seed: UInt64
    public private(set) var tokens: [Int] = []
    /// Mel frames (after the prompt) emitted so far.
    public private(set) var emittedFrames = 0
    public private(set) var finished = false

    public init(flow: S3GenFlow, reference: FlowReference, steps: Int? = nil, seed: UInt64 = 0) {
        self.flow = flow
        self.reference = reference
        self.steps = steps ?? flow.defaultSteps
        self.seed = seed
    }

    /// Appends `newTokens` and returns the newly final mel frames [80, k] (k may be 0).
    public mutating func push(_ newTokens: [Int], final: Bool = false) throws -> Tensor {
        guard !finished else { throw FlowError.streamFinished }
        try flow.checkTokens(newTokens, offset: reference.promptTokens.count + tokens.count)
        tokens += newTokens
        if final {
            finished = true
            guard !tokens.isEmpty else { throw FlowError.noTokens }
        } else if tokens.count <= flow.encoder.lookahead {
            return Tensor(zeros: [flow.melChannels, 0])
        }
        let mel = try flow.inference(tokens: tokens, reference: reference, finalize: final, steps: steps, seed: seed)
        let fresh = mel.slice(1, min(emittedFrames, mel.shape[1])..<mel.shape[1]).contiguous()
        emittedFrames = max(emittedFrames, mel.shape[1])
        return fresh
    }
}
