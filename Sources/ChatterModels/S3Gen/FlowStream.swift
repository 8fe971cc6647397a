import ChatterTensor

/// Incremental S3Gen flow decoding (reference §8.4): each push re-runs the flow on prompt + every
/// token so far and emits the mel frames not emitted before, holding back the frames of the last
/// `lookahead` tokens (3 tokens = 6 frames) until their future tokens exist or the stream ends.
///
/// The noise is `FlowNoise` indexed by absolute decoder frame, so a frame sees the same z on every
/// call. Frames emitted earlier would still change slightly with more tokens (attention is global):
/// that is the seam the vocoder's overlap hides. The last push (`final: true`) decodes exactly what a
/// one-shot `inference(…, finalize: true)` over the same tokens does.
///
/// `maxContextTokens` bounds the cost of a push on long utterances: at most that many tokens before
/// the first one whose frames are not yet emitted are re-decoded after the prompt (with the tokens
/// from there on), each still at its absolute noise frame. Without it (nil) every push re-decodes
/// the whole utterance. A push whose window reaches back to the first token decodes exactly what
/// one call over the same tokens does.
///
/// `work` counts what the pushes cost (mel frames through the encoder, through the CFM estimator
/// times its steps), so that streamed and one-shot decoding compare exactly rather than by timing.
public struct FlowStream: Sendable {
    public let flow: S3GenFlow
    public let reference: FlowReference
    public let steps: Int
    public let seed: UInt64
    public let maxContextTokens: Int?
    /// Prompt tokens the first push decodes, unless it is also the final one (the last that many;
    /// nil: all). The first push is what a listener waits for, and the prompt (10 s for the built-in
    /// voices) is most of its work; every later push decodes the whole prompt, as one call over the
    /// utterance does, so the bound costs only the first emission's fidelity to that call
    /// (BENCHMARKS.md, "The streaming tax, counted").
    public let maxPromptTokens: Int?
    public private(set) var tokens: [Int] = []
    /// Mel frames (after the prompt) emitted so far.
    public private(set) var emittedFrames = 0
    public private(set) var finished = false
    /// Flow work done so far (every push, prompt frames included).
    public private(set) var work = FlowWork()

    public init(flow: S3GenFlow, reference: FlowReference, steps: Int? = nil, seed: UInt64 = 0, maxContextTokens: Int? = nil,
                maxPromptTokens: Int? = nil) {
        precondition(maxContextTokens.map { $0 > 0 } ?? true, "maxContextTokens must be positive")
        precondition(maxPromptTokens.map { $0 > 0 } ?? true, "maxPromptTokens must be positive")
        self.maxContextTokens = maxContextTokens
        self.maxPromptTokens = maxPromptTokens
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
        let ratio = flow.tokenMelRatio
        // First token re-decoded: up to `maxContextTokens` before the first token not fully emitted.
        let windowStart = maxContextTokens.map { max(0, emittedFrames / ratio - $0) } ?? 0
        let window = Array(tokens[windowStart...])
        let promptFrames = ratio * reference.promptTokens.count
        let firstPush = work.calls == 0 && !final
        let kept = firstPush ? min(reference.promptTokens.count, maxPromptTokens ?? reference.promptTokens.count) : reference.promptTokens.count
        let prompt = kept == reference.promptTokens.count ? reference : try FlowReference(
            promptTokens: Array(reference.promptTokens.suffix(kept)),
            promptMel: reference.promptMel.slice(0, (promptFrames - ratio * kept)..<promptFrames).contiguous(),
            embedding: reference.embedding, melChannels: flow.melChannels, tokenMelRatio: ratio)
        let held = final ? 0 : flow.encoder.lookahead * ratio
        let noiseSource = FlowNoise(seed: seed, channels: flow.melChannels)
        let noise = windowStart == 0 && kept == reference.promptTokens.count ? nil : concatenate([
            noiseSource.frames((promptFrames - ratio * kept)..<promptFrames),
            noiseSource.frames((promptFrames + ratio * windowStart)..<(promptFrames + ratio * tokens.count - held)),
        ], axis: 1)
        let mel = try flow.inference(tokens: window, reference: prompt, finalize: final, steps: steps, noise: noise, seed: seed)
        let encoded = ratio * (kept + window.count)
        work.calls += 1
        work.encoderFrames += encoded
        work.estimatorFrameSteps += (encoded - held) * steps
        let end = ratio * windowStart + mel.shape[1]  // absolute frame after the last decoded
        let fresh = mel.slice(1, min(max(0, emittedFrames - ratio * windowStart), mel.shape[1])..<mel.shape[1]).contiguous()
        emittedFrames = max(emittedFrames, end)
        return fresh
    }
}

/// The flow's cost in the units that scale it: mel frames through the conformer encoder, and mel
/// frames through the CFM estimator times the solver's steps (the bulk of S3Gen's time).
public struct FlowWork: Sendable, Equatable {
    /// `S3GenFlow.inference` calls.
    public var calls = 0
    public var encoderFrames = 0
    public var estimatorFrameSteps = 0

    public init(calls: Int = 0, encoderFrames: Int = 0, estimatorFrameSteps: Int = 0) {
        self.calls = calls
        self.encoderFrames = encoderFrames
        self.estimatorFrameSteps = estimatorFrameSteps
    }
}
