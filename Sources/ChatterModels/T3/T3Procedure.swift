import ChatterTensor

/// How T3 is driven, the one place the two upstream procedures differ: `T3.inference` for the Llama
/// backbone (original, multilingual) and `T3.inference_turbo` for GPT-2 (Turbo and its smaller
/// siblings). `T3Config.procedure` picks one from the backbone; the model, decoder and token
/// iterator ask it rather than test for a family.
public protocol T3Procedure: Sendable {
    /// Loads the backbone's blocks and final norm (`tfmr.*`).
    func loadStack(weights: some WeightStore, config: T3Config) throws -> any T3Stack
    /// Whether a positive CFG weight adds the unconditional batch row.
    var classifierFreeGuidance: Bool { get }
    /// Whether generated tokens take rows of the learned speech position table, so that it bounds
    /// `maxNewTokens` (GPT-2 is bounded by its `wpe` rows instead, see `T3.maxSequenceLength`).
    var speechPositionsBoundGeneration: Bool { get }
    /// Whether the prompt's speech embeddings get learned speech positions 0…P−1.
    var promptHasSpeechPositions: Bool { get }
    /// Prefill rows after the text (the start-of-speech embeddings): the queries whose attention
    /// the alignment analyser reads from the prefill.
    var speechStartRows: Int { get }
    /// The text ids the model reads from the tokenizer's (already checked for length and range).
    func wrap(textTokens: [Int], config: T3Config) -> [Int]
    /// Each batch row's prefill rows after the conditioning, [T0 − len_cond, D] each.
    func prefillSuffixRows(model: T3, wrappedText: [Int], classifierFree: Bool) -> [Tensor]
    /// The repetition-penalty history of the next draw, given the tokens generated so far.
    func history(generated: [Int], startSpeech: Int) -> [Int]
    /// The processed distribution a token is drawn from (the upstream logits-processor chain).
    func distribution(_ logits: [Float], history: [Int], parameters: T3SamplingParameters) -> [Float]
    /// Whether the token just drawn (the `count`-th) ends generation as end-of-speech.
    func stops(_ token: Int, count: Int, config: T3Config) -> Bool
    /// The generated tokens handed to S3Gen.
    func speechTokens(_ tokens: [Int], config: T3Config) -> [Int]
}

extension T3Config {
    /// The procedure the backbone runs (see `T3Procedure`).
    public var procedure: any T3Procedure {
        switch backbone {
        case .llama: T3LlamaProcedure()
        case .gpt2: T3TurboProcedure()
        }
    }
}

/// `T3.inference`: `[cond | text + positions | BOS | BOS]` with the text wrapped in start/stop
/// tokens, classifier-free guidance over two rows, repetition penalty first, history starting with
/// start-of-speech; the output cut at EOS.
public struct T3LlamaProcedure: T3Procedure {
    public init() {}
    public var classifierFreeGuidance: Bool { true }
    public var speechPositionsBoundGeneration: Bool { true }
    public var promptHasSpeechPositions: Bool { true }
    public var speechStartRows: Int { 2 }

    public func loadStack(weights: some WeightStore, config: T3Config) throws -> any T3Stack {
        try LlamaStack(weights: weights, config: config)
    }

    public func wrap(textTokens: [Int], config: T3Config) -> [Int] {
        [config.startTextToken] + textTokens + [config.stopTextToken]
    }

    public func prefillSuffixRows(model: T3, wrappedText: [Int], classifierFree: Bool) -> [Tensor] {
        let positions = Array(wrappedText.indices)
        let text = model.gather(model.textEmbedding, wrappedText, plus: model.textPositions, positions)
        let bos = model.speechStepEmbedding(token: model.config.startSpeechToken, speechPosition: 0)
        var rows = [concatenate([text, bos, bos], axis: 0)]
        if classifierFree {
            let uncondText = model.gather(nil, [], plus: model.textPositions, positions)
            rows.append(concatenate([uncondText, bos, bos], axis: 0))
        }
        return rows
    }

    public func history(generated: [Int], startSpeech: Int) -> [Int] { [startSpeech] + generated }

    public func distribution(_ logits: [Float], history: [Int], parameters: T3SamplingParameters) -> [Float] {
        T3Sampler.distribution(logits, history: history, parameters: parameters)
    }

    public func stops(_ token: Int, count: Int, config: T3Config) -> Bool { token == config.stopSpeechToken }

    public func speechTokens(_ tokens: [Int], config: T3Config) -> [Int] {
        T3Sampler.postprocess(tokens, startSpeech: config.startSpeechToken, stopSpeech: config.stopSpeechToken)
    }
}

/// `T3.inference_turbo`: `[cond | text | BOS]`, text ids as the tokenizer gives them, one row (no
/// guidance), temperature → top_k → top_p → repetition penalty with history `[start_speech]` for
/// the first draw and the generated tokens alone after it; the token drawn from the prefill is never
/// taken as EOS (upstream checks for EOS only inside its loop).
public struct T3TurboProcedure: T3Procedure {
    public init() {}
    public var classifierFreeGuidance: Bool { false }
    public var speechPositionsBoundGeneration: Bool { false }
    public var promptHasSpeechPositions: Bool { false }
    public var speechStartRows: Int { 1 }

    public func loadStack(weights: some WeightStore, config: T3Config) throws -> any T3Stack {
        try GPT2Stack(weights: weights, config: config)
    }

    public func wrap(textTokens: [Int], config: T3Config) -> [Int] { textTokens }

    public func prefillSuffixRows(model: T3, wrappedText: [Int], classifierFree: Bool) -> [Tensor] {
        let text = model.gather(model.textEmbedding, wrappedText, plus: nil, [])
        let bos = model.gather(model.speechEmbedding, [model.config.startSpeechToken], plus: nil, [])
        return [concatenate([text, bos], axis: 0)]
    }

    public func history(generated: [Int], startSpeech: Int) -> [Int] { generated.isEmpty ? [startSpeech] : generated }

    public func distribution(_ logits: [Float], history: [Int], parameters: T3SamplingParameters) -> [Float] {
        T3Sampler.turboDistribution(logits, history: history, parameters: parameters)
    }

    public func stops(_ token: Int, count: Int, config: T3Config) -> Bool { token == config.stopSpeechToken && count > 1 }

    public func speechTokens(_ tokens: [Int], config: T3Config) -> [Int] {
        T3Sampler.turboPostprocess(tokens, startSpeech: config.startSpeechToken, stopSpeech: config.stopSpeechToken)
    }
}

/// A T3 backbone's blocks and final norm over a KV cache (one implementation per architecture, in
/// its block's file: `LlamaStack`, `GPT2Stack`).
public protocol T3Stack {
    /// Positions it can hold: prefill plus generated tokens.
    var maxSequenceLength: Int { get }
    /// Runs over `embeddings` [B, T, D] (positions continue from the cache), returning the
    /// post-final-norm hidden states [B, T, D]; `observe` collects attention probabilities of
    /// (layer, head) pairs for batch row 0, the last `observedQueries` query tokens, row-major over
    /// all cached keys (where the architecture records them).
    func forward(_ embeddings: Tensor, cache: KVCache, observe: [T3AttentionHead], observedQueries: Int,
                 probabilities: inout [T3AttentionHead: [Float]]) -> Tensor
    /// One decode step over `scratch.hidden` [B, 1, D], leaving the post-norm state in `scratch.norm`.
    func decode(scratch: T3DecodeScratch, cache: KVCache, observe: [T3AttentionHead],
                probabilities: inout [T3AttentionHead: [Float]])
}
