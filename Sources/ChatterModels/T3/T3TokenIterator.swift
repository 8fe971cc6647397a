import ChatterTensor
import Synchronization

/// A thread-safe cancellation flag for a `T3TokenIterator` (set from any thread, checked per token).
public final class T3Cancellation: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public func cancel() { flag.store(true, ordering: .relaxed) }
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }
}

/// Synchronous speech-token generation, one token per `next()`, as upstream `T3.inference`:
/// CFG combine → repetition penalty (history starts with start-of-speech) → temperature → min_p →
/// top_p → draw; stops after EOS (which is returned), after `maxNewTokens` tokens, or when cancelled.
/// Upstream runs one more forward pass after the last token (its logits unused); this does not.
public final class T3TokenIterator: IteratorProtocol, Sequence {
    public let decoder: T3Decoder
    public let parameters: T3SamplingParameters
    public let cancellation: T3Cancellation
    private var uniforms: any T3UniformSource
    /// `[start_speech] + generated`: the repetition-penalty history.
    public private(set) var history: [Int]
    /// Raw generated tokens (EOS included if sampled).
    public private(set) var tokens: [Int] = []
    /// The processed distribution the last token was drawn from.
    public private(set) var lastDistribution: [Float] = []
    public private(set) var finished = false
    /// Called after each forward pass (prefill: step 0; then once per fed token) with the observed
    /// heads' attention rows (batch row 0, last query token, over all cached positions).
    public var onAttention: ((_ step: Int, _ probabilities: [T3AttentionHead: [Float]]) -> Void)?

    /// Runs the prefill. `textTokens` are the tokenizer's ids (no start/stop tokens).
    public init(model: T3, speakerEmbedding: [Float], promptTokens: [Int], textTokens: [Int],
                parameters: T3SamplingParameters = T3SamplingParameters(),
                uniforms: any T3UniformSource = SplitMixUniforms(seed: 0),
                observedHeads: [T3AttentionHead] = [], cancellation: T3Cancellation = T3Cancellation(),
                onAttention: ((Int, [T3AttentionHead: [Float]]) -> Void)? = nil) throws {
        try parameters.validate()
        let conditioning = try model.conditioning(speakerEmbedding: speakerEmbedding, promptTokens: promptTokens,
                                                  exaggeration: parameters.exaggeration)
        decoder = try T3Decoder(model: model, conditioning: conditioning, textTokens: textTokens, cfgWeight: parameters.cfgWeight,
                                maxNewTokens: parameters.maxNewTokens, observedHeads: observedHeads)
        self.parameters = parameters
        self.uniforms = uniforms
        self.cancellation = cancellation
        self.onAttention = onAttention
        history = [model.config.startSpeechToken]
        onAttention?(0, decoder.attentionProbabilities)
    }

    /// The next sampled token, or nil once finished or cancelled.
    public func next() -> Int? {
        guard !finished else { return nil }
        if cancellation.isCancelled {
            finished = true
            return nil
        }
        let distribution = T3Sampler.distribution(decoder.logits, history: history, parameters: parameters)
        let token = T3Sampler.draw(distribution, uniform: uniforms.next())
        lastDistribution = distribution
        tokens.append(token)
        history.append(token)
        if token == decoder.model.config.stopSpeechToken || tokens.count >= parameters.maxNewTokens {
            finished = true
            return token
        }
        // The token is a valid id (drawn over the vocabulary) and fed < maxNewTokens: cannot throw.
        try! decoder.feed(token)
        onAttention?(tokens.count, decoder.attentionProbabilities)
        return token
    }

    /// The tokens handed to S3Gen: cut at EOS, ids ≥ start-of-speech dropped.
    public var speechTokens: [Int] {
        T3Sampler.postprocess(tokens, startSpeech: decoder.model.config.startSpeechToken,
                              stopSpeech: decoder.model.config.stopSpeechToken)
    }
}
