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
///
/// A Turbo model runs `T3.inference_turbo` instead: one row, temperature → top_k → top_p →
/// repetition penalty (history `[start_speech]` for the first draw, then the generated tokens
/// without it), and the token drawn from the prefill is never taken as EOS (upstream checks for
/// EOS only inside its loop); `maxNewTokens` counts that first token (upstream: 1 + max_gen_len).
///
/// A model whose config names alignment heads (multilingual V2) runs 0.1.7's alignment-stream
/// analyser: each draw's CFG-combined logits pass through `T3AlignmentStreamAnalyzer.step` before
/// the repetition penalty, as upstream's loop does.
public final class T3TokenIterator: IteratorProtocol, Sequence {
    public let decoder: T3Decoder
    public let parameters: T3SamplingParameters
    public let cancellation: T3Cancellation
    private var uniforms: any T3UniformSource
    /// The repetition-penalty history of the next draw: `[start_speech] + generated` (Turbo:
    /// `[start_speech]` before the first token, then the generated tokens alone).
    public var history: [Int] {
        decoder.model.procedure.history(generated: tokens, startSpeech: decoder.model.config.startSpeechToken)
    }
    /// Raw generated tokens (EOS included if sampled).
    public private(set) var tokens: [Int] = []
    /// The processed distribution the last token was drawn from, and the logits that entered the
    /// processor chain (CFG-combined, after the alignment analyser where there is one).
    public private(set) var lastDistribution: [Float] = []
    public private(set) var lastLogits: [Float] = []
    public private(set) var finished = false
    /// Called after each forward pass (prefill: step 0; then once per fed token) with the observed
    /// heads' attention rows (batch row 0, last query token, over all cached positions).
    public var onAttention: ((_ step: Int, _ probabilities: [T3AttentionHead: [Float]]) -> Void)?
    /// The alignment-stream analyser (nil unless the model's config names alignment heads), with
    /// its counts of the draws it changed.
    public private(set) var alignment: T3AlignmentStreamAnalyzer?
    /// The heads the caller asked to observe (the analyser's are observed as well).
    private let callerHeads: [T3AttentionHead]

    /// Runs the prefill. `textTokens` are the tokenizer's ids (no start/stop tokens).
    ///
    /// With a `prefix` (a `T3PrefixState` built for this model from the same speaker embedding,
    /// prompt tokens and, where the model has an emotion projection, `parameters.exaggeration`), the
    /// conditioning is not rebuilt and the backbone runs over the text rows only. A prefix that does
    /// not match exactly throws `T3Error.prefixMismatch`.
    public init(model: T3, speakerEmbedding: [Float], promptTokens: [Int], textTokens: [Int],
                parameters: T3SamplingParameters = T3SamplingParameters(), prefix: T3PrefixState? = nil,
                uniforms: any T3UniformSource = SplitMixUniforms(seed: 0),
                observedHeads: [T3AttentionHead] = [], cancellation: T3Cancellation = T3Cancellation(),
                kvCachePrecision: KVCache.Precision = .f32,
                onAttention: ((Int, [T3AttentionHead: [Float]]) -> Void)? = nil) throws {
        try parameters.validate()
        let config = model.config
        let alignmentHeads = config.alignmentHeads ?? []
        for head in alignmentHeads where !(0..<config.layers).contains(head.layer) || !(0..<config.heads).contains(head.head) {
            throw T3Error.invalidParameter(name: "alignment head", value: Double(head.layer * config.heads + head.head),
                                           reason: "layer \(head.layer), head \(head.head) outside the model's \(config.layers) layers of \(config.heads) heads")
        }
        let observed = observedHeads + alignmentHeads.filter { !observedHeads.contains($0) }
        let prefillQueries = alignmentHeads.isEmpty ? 1 : model.procedure.speechStartRows
        if let prefix {
            try prefix.check(model: model, inputs: T3ConditioningInputs(config: model.config, speakerEmbedding: speakerEmbedding,
                                                                        promptTokens: promptTokens, exaggeration: parameters.exaggeration))
            try parameters.validate(for: model.config)
            decoder = try T3Decoder(model: model, prefix: prefix, textTokens: textTokens, cfgWeight: parameters.cfgWeight,
                                    maxNewTokens: parameters.maxNewTokens, observedHeads: observed,
                                    observedPrefillQueries: prefillQueries, kvCachePrecision: kvCachePrecision)
        } else {
            try parameters.validate(for: model.config)
            let conditioning = try model.conditioning(speakerEmbedding: speakerEmbedding, promptTokens: promptTokens,
                                                      exaggeration: parameters.exaggeration)
            decoder = try T3Decoder(model: model, conditioning: conditioning, textTokens: textTokens, cfgWeight: parameters.cfgWeight,
                                    maxNewTokens: parameters.maxNewTokens, observedHeads: observed,
                                    observedPrefillQueries: prefillQueries, kvCachePrecision: kvCachePrecision)
        }
        if !alignmentHeads.isEmpty {
            let text = model.procedure.wrap(textTokens: textTokens, config: config).count
            let textEnd = decoder.prefillLength - model.procedure.speechStartRows
            alignment = T3AlignmentStreamAnalyzer(heads: alignmentHeads, textRange: (textEnd - text)..<textEnd,
                                                  endOfSpeech: config.stopSpeechToken)
        }
        callerHeads = observedHeads
        self.parameters = parameters
        self.uniforms = uniforms
        self.cancellation = cancellation
        self.onAttention = onAttention
        onAttention?(0, callerAttention(lastRowOnly: true))
    }

    /// The caller's heads' rows of the last pass (the prefill's last query only, as documented).
    private func callerAttention(lastRowOnly: Bool) -> [T3AttentionHead: [Float]] {
        var rows: [T3AttentionHead: [Float]] = [:]
        let keys = decoder.cachedPositions
        for head in callerHeads {
            guard let row = decoder.attentionProbabilities[head] else { continue }
            rows[head] = lastRowOnly && row.count > keys ? Array(row.suffix(keys)) : row
        }
        return rows
    }

    /// The next sampled token, or nil once finished or cancelled.
    public func next() -> Int? {
        guard !finished else { return nil }
        if cancellation.isCancelled {
            finished = true
            return nil
        }
        let procedure = decoder.model.procedure
        var logits = decoder.logits
        alignment?.step(&logits, attention: decoder.attentionProbabilities, keys: decoder.cachedPositions,
                        lastToken: tokens.last ?? decoder.model.config.startSpeechToken)
        let distribution = procedure.distribution(logits, history: history, parameters: parameters)
        let token = T3Sampler.draw(distribution, uniform: uniforms.next())
        lastDistribution = distribution
        lastLogits = logits
        tokens.append(token)
        let stops = procedure.stops(token, count: tokens.count, config: decoder.model.config)
        if stops || tokens.count >= parameters.maxNewTokens {
            finished = true
            return token
        }
        // The token is a valid id (drawn over the vocabulary) and fed < maxNewTokens: cannot throw.
        try! decoder.feed(token)
        onAttention?(tokens.count, callerAttention(lastRowOnly: false))
        return token
    }

    /// The tokens handed to S3Gen: cut at EOS, ids ≥ start-of-speech dropped (Turbo: a final EOS
    /// dropped, then ids ≥ start-of-speech; upstream then appends three S3GEN_SIL tokens).
    public var speechTokens: [Int] {
        decoder.model.procedure.speechTokens(tokens, config: decoder.model.config)
    }
}
