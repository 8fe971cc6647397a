import ChatterTensor

/// The forward state of one utterance: a preallocated KV cache for the CFG rows, the prefill, and
/// one decode step per fed-back token, each producing CFG-combined logits `c + w·(c − u)`.
///
/// With `cfgWeight == 0` a single (conditional) row is run; upstream English crashes in that case
/// (its BOS embedding is always duplicated to two rows), and with two rows the result would be `c`.
/// Turbo always runs one row (`inference_turbo` has no guidance; `generate` ignores `cfg_weight`).
public final class T3Decoder {
    public let model: T3
    public let cfgWeight: Float
    public let batch: Int
    /// Prefill length T0 = len_cond + text + 2.
    public let prefillLength: Int
    let cache: KVCache
    let scratch: T3DecodeScratch
    /// Tokens fed back so far (the next one uses learned speech position `fed + 1`).
    public private(set) var fed = 0
    /// Attention heads whose probabilities are recorded after every forward pass.
    public var observedHeads: [T3AttentionHead] = []
    /// The recorded probabilities of the last forward pass: batch row 0 (conditional), last query
    /// token (the prefill: its last `observedPrefillQueries`, row-major), over all cached positions
    /// (`cachedPositions` per row).
    public private(set) var attentionProbabilities: [T3AttentionHead: [Float]] = [:]
    /// Positions in the cache after the last forward pass: the keys each attention row spans.
    public var cachedPositions: Int { prefillLength + fed }
    /// Raw logits [B, V] of the last forward pass (row 0 conditional, row 1 unconditional); after a
    /// decode step this is the decoder's reused buffer, overwritten by the next step.
    public private(set) var rawLogits: Tensor
    public let maxSteps: Int

    /// Builds the prefill from the conditioning and the tokenizer's text ids (unwrapped) and runs it.
    /// `kvCachePrecision`: how the cache stores keys and values (`KVCache.Precision`; f32 is the reference).
    public convenience init(model: T3, conditioning: Tensor, textTokens: [Int], cfgWeight: Float, maxNewTokens: Int,
                            observedHeads: [T3AttentionHead] = [], observedPrefillQueries: Int = 1,
                            kvCachePrecision: KVCache.Precision = .f32) throws {
        try self.init(model: model, start: .conditioning(conditioning), textTokens: textTokens, cfgWeight: cfgWeight,
                      maxNewTokens: maxNewTokens, observedHeads: observedHeads, observedPrefillQueries: observedPrefillQueries,
                      kvCachePrecision: kvCachePrecision)
    }

    /// Starts from a conditioning prefix computed earlier (`T3PrefixState`, same model): its keys and
    /// values are copied into every row of the cache and the backbone runs over the text and
    /// start-of-speech rows only. Logits, attention rows and every later step equal those of
    /// `init(model:conditioning:…)` with the same conditioning, up to summation order (with a 16-bit
    /// `kvCachePrecision`, the prefix's own attention ran over its f32 keys and values, which are
    /// rounded only when copied in). Throws `T3Error.prefixMismatch` if `prefix` was built by another model.
    public convenience init(model: T3, prefix: T3PrefixState, textTokens: [Int], cfgWeight: Float, maxNewTokens: Int,
                            observedHeads: [T3AttentionHead] = [], observedPrefillQueries: Int = 1,
                            kvCachePrecision: KVCache.Precision = .f32) throws {
        try prefix.check(model: model)
        try self.init(model: model, start: .prefix(prefix), textTokens: textTokens, cfgWeight: cfgWeight,
                      maxNewTokens: maxNewTokens, observedHeads: observedHeads, observedPrefillQueries: observedPrefillQueries,
                      kvCachePrecision: kvCachePrecision)
    }

    private enum Start {
        case conditioning(Tensor)
        case prefix(T3PrefixState)
    }

    private init(model: T3, start: Start, textTokens: [Int], cfgWeight: Float, maxNewTokens: Int,
                 observedHeads: [T3AttentionHead], observedPrefillQueries: Int, kvCachePrecision: KVCache.Precision) throws {
        guard cfgWeight.isFinite, cfgWeight >= 0 else {
            throw T3Error.invalidParameter(name: "cfg_weight", value: Double(cfgWeight), reason: "must be finite and ≥ 0")
        }
        guard maxNewTokens >= 1, !model.procedure.speechPositionsBoundGeneration || maxNewTokens < model.config.speechPositions else {
            throw T3Error.invalidParameter(name: "max_new_tokens", value: Double(maxNewTokens),
                                           reason: "must be in 1..<\(model.config.speechPositions) (speech position table)")
        }
        let wrapped = try model.wrapText(textTokens)
        self.model = model
        self.cfgWeight = cfgWeight
        self.maxSteps = maxNewTokens
        self.observedHeads = observedHeads
        let batch = cfgWeight > 0 && model.procedure.classifierFreeGuidance ? 2 : 1
        self.batch = batch
        let embeddings: Tensor
        switch start {
        case let .conditioning(conditioning):
            embeddings = model.prefillEmbeddings(conditioning: conditioning, wrappedText: wrapped, classifierFree: batch == 2)
            prefillLength = embeddings.shape[1]
            prefix = nil
        case let .prefix(state):
            embeddings = model.prefillSuffixEmbeddings(wrappedText: wrapped, classifierFree: batch == 2)
            prefillLength = state.conditioningLength + embeddings.shape[1]
            prefix = state
        }
        // Subtracted, not added: `maxNewTokens` may be any Int here and the sum must not overflow.
        guard maxNewTokens <= model.maxSequenceLength - prefillLength else {
            throw T3Error.sequenceTooLong(prefill: prefillLength, maxNewTokens: maxNewTokens, limit: model.maxSequenceLength)
        }
        cache = model.makeCache(batch: batch, capacity: prefillLength + maxNewTokens, precision: kvCachePrecision)
        scratch = T3DecodeScratch(batch: batch, config: model.config)
        prefix?.load(into: cache)
        var probabilities: [T3AttentionHead: [Float]] = [:]
        let hidden = model.backbone(embeddings, cache: cache, observe: observedHeads, observedQueries: observedPrefillQueries,
                                    probabilities: &probabilities)
        attentionProbabilities = probabilities
        rawLogits = model.lastLogits(hidden)
        backboneOutput = hidden
        backboneInput = embeddings
    }

    /// The conditioning prefix this decoder started from, if any.
    public let prefix: T3PrefixState?
    /// The rows the backbone ran over in the prefill, input [B, T, D] and post-norm hidden states
    /// [B, T, D]: the whole prefill (T = T0), or without the conditioning when started from a prefix.
    let backboneInput: Tensor
    let backboneOutput: Tensor

    /// The prefill's input [B, T0, D] (kept for inspection; assembled on demand when the
    /// conditioning rows came from a prefix).
    public var prefillEmbeddings: Tensor {
        guard let prefix else { return backboneInput }
        return withPrefixRows(prefix.conditioning, backboneInput)
    }

    /// The prefill's post-norm hidden states [B, T0, D] (as `prefillEmbeddings`).
    public var prefillHidden: Tensor {
        guard let prefix else { return backboneOutput }
        return withPrefixRows(prefix.hidden, backboneOutput)
    }

    /// `rows` [len_cond, D] ahead of each batch row of `rest` [B, T, D].
    private func withPrefixRows(_ rows: Tensor, _ rest: Tensor) -> Tensor {
        let t = rest.shape[1], d = rest.shape[2]
        return concatenate((0..<rest.shape[0]).map { r in
            concatenate([rows, rest.slice(0, r..<(r + 1)).contiguous().reshaped([t, d])], axis: 0).unsqueezed(0)
        }, axis: 0)
    }

    /// CFG-combined logits of the last forward pass, `c + w·(c − u)` (or `c` without CFG).
    public var logits: [Float] {
        let v = rawLogits.shape[1]
        let all = rawLogits.scalars()
        guard batch == 2 else { return Array(all[0..<v]) }
        var out = [Float](repeating: 0, count: v)
        for i in 0..<v {
            let c = all[i], u = all[v + i]
            out[i] = c + cfgWeight * (c - u)
        }
        return out
    }

    /// Feeds `token` to every row (`speech_emb[token] + speech_pos_emb[fed + 1]` at RoPE position
    /// T0 + fed) and runs one decode step.
    public func feed(_ token: Int) throws {
        guard token >= 0, token < model.config.speechVocabularySize else {
            throw T3Error.tokenOutOfRange(kind: "speech", token: token, vocabularySize: model.config.speechVocabularySize)
        }
        guard fed < maxSteps else {
            throw T3Error.invalidParameter(name: "step", value: Double(fed + 1), reason: "beyond max_new_tokens \(maxSteps)")
        }
        model.writeSpeechStepEmbedding(token: token, speechPosition: fed + 1, into: scratch.hidden)
        var probabilities: [T3AttentionHead: [Float]] = [:]
        model.decodeBackbone(scratch: scratch, cache: cache, observe: observedHeads, probabilities: &probabilities)
        attentionProbabilities = probabilities
        rawLogits = scratch.logits
        fed += 1
    }
}
