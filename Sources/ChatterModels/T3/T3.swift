import ChatterTensor

/// T3 with a Llama backbone (original English Chatterbox): speech-token language model over
/// `[conditioning | text | BOS | BOS]` with classifier-free guidance.
///
/// Weights are read by their upstream state-dict names (`tfmr.layers.0.self_attn.q_proj.weight`, …).
/// `tfmr.embed_tokens.weight` and `text_head.weight` are never read.
public final class T3: @unchecked Sendable {
    public let config: T3Config
    let blocks: [LlamaBlock]
    let finalNorm: Tensor
    let speechHead: Tensor
    let textEmbedding: Tensor
    let speechEmbedding: Tensor
    let textPositions: Tensor
    let speechPositions: Tensor
    let conditionEncoder: T3ConditionEncoder
    let rotary: RotaryEmbedding

    public init(weights: some WeightStore, config: T3Config = .english) throws {
        self.config = config
        let d = config.hiddenSize
        blocks = try (0..<config.layers).map { try LlamaBlock(weights: weights.scoped("tfmr.layers.\($0)."), config: config) }
        finalNorm = try weights.float32("tfmr.norm.weight", shape: [d])
        speechHead = try weights.tensor("speech_head.weight", shape: [config.speechVocabularySize, d])
        textEmbedding = try weights.float32("text_emb.weight", shape: [config.textVocabularySize, d])
        speechEmbedding = try weights.float32("speech_emb.weight", shape: [config.speechVocabularySize, d])
        textPositions = try weights.float32("text_pos_emb.emb.weight", shape: [config.textPositions, d])
        speechPositions = try weights.float32("speech_pos_emb.emb.weight", shape: [config.speechPositions, d])
        conditionEncoder = try T3ConditionEncoder(weights: weights.scoped("cond_enc."), config: config)
        rotary = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta, llama3Scaling: config.ropeScaling)
    }

    // MARK: Embeddings

    /// Rows `ids` of `table` [V, D] plus rows `positions` of `positionTable` (each optional), [n, D].
    func gather(_ table: Tensor?, _ ids: [Int], plus positionTable: Tensor?, _ positions: [Int]) -> Tensor {
        let d = config.hiddenSize, n = max(ids.count, positions.count)
        let result = Tensor(zeros: [n, d])
        result.withUnsafeMutableFloats { out in
            if let table {
                table.contiguous().withUnsafeFloats { t in
                    for (r, id) in ids.enumerated() {
                        for j in 0..<d { out[r * d + j] = t[id * d + j] }
                    }
                }
            }
            if let positionTable {
                positionTable.contiguous().withUnsafeFloats { p in
                    for (r, pos) in positions.enumerated() {
                        for j in 0..<d { out[r * d + j] += p[pos * d + j] }
                    }
                }
            }
        }
        return result
    }

    /// The conditioning vectors [len_cond, D]: speaker projection, perceiver over the prompt speech
    /// tokens (with learned speech positions 0…P−1), exaggeration projection.
    public func conditioning(speakerEmbedding: [Float], promptTokens: [Int], exaggeration: Float) throws -> Tensor {
        guard speakerEmbedding.count == config.speakerEmbeddingSize else {
            throw T3Error.speakerEmbeddingSize(expected: config.speakerEmbeddingSize, actual: speakerEmbedding.count)
        }
        guard promptTokens.count <= config.speechPositions else {
            throw T3Error.promptTooLong(count: promptTokens.count, limit: config.speechPositions)
        }
        for token in promptTokens where token < 0 || token >= config.speechVocabularySize {
            throw T3Error.tokenOutOfRange(kind: "prompt speech", token: token, vocabularySize: config.speechVocabularySize)
        }
        guard exaggeration.isFinite else {
            throw T3Error.invalidParameter(name: "exaggeration", value: Double(exaggeration), reason: "must be finite")
        }
        let speaker = Tensor(shape: [1, config.speakerEmbeddingSize], scalars: speakerEmbedding)
        let prompt = gather(speechEmbedding, promptTokens, plus: speechPositions, Array(promptTokens.indices))
        return conditionEncoder(speakerEmbedding: speaker, promptEmbeddings: prompt, exaggeration: exaggeration)
    }

    /// Wraps tokenizer ids in the start/stop text tokens, checking length and range.
    public func wrapText(_ textTokens: [Int]) throws -> [Int] {
        guard !textTokens.isEmpty else { throw T3Error.emptyText }
        guard textTokens.count <= config.maxTextTokens else {
            throw T3Error.textTooLong(count: textTokens.count, limit: config.maxTextTokens)
        }
        for token in textTokens where token < 0 || token >= config.textVocabularySize {
            throw T3Error.tokenOutOfRange(kind: "text", token: token, vocabularySize: config.textVocabularySize)
        }
        return [config.startTextToken] + textTokens + [config.stopTextToken]
    }

    /// The prefill input [B, T0, D] (B = 2 with CFG, else 1):
    /// `[cond | text_emb[ids] + text_pos | bos | bos]`, the second row with zeroed text token
    /// embeddings (text positions kept), as `T3.prepare_input_embeds` + `T3.inference`.
    public func prefillEmbeddings(conditioning: Tensor, wrappedText: [Int], classifierFree: Bool) -> Tensor {
        let positions = Array(wrappedText.indices)
        let text = gather(textEmbedding, wrappedText, plus: textPositions, positions)
        let bos = speechStepEmbedding(token: config.startSpeechToken, speechPosition: 0)
        var rows = [concatenate([conditioning, text, bos, bos], axis: 0).unsqueezed(0)]
        if classifierFree {
            let uncondText = gather(nil, [], plus: textPositions, positions)
            rows.append(concatenate([conditioning, uncondText, bos, bos], axis: 0).unsqueezed(0))
        }
        return concatenate(rows, axis: 0)
    }

    /// `speech_emb[token] + speech_pos_emb[speechPosition]`, [1, D].
    func speechStepEmbedding(token: Int, speechPosition: Int) -> Tensor {
        gather(speechEmbedding, [token], plus: speechPositions, [speechPosition])
    }

    // MARK: Backbone

    /// Runs the backbone over `embeddings` [B, T, D] (positions continue from the cache), returning
    /// the post-final-norm hidden states [B, T, D]; `observe` collects attention probabilities of
    /// (layer, head) pairs for batch row 0, last query token.
    func backbone(_ embeddings: Tensor, cache: KVCache, observe: [T3AttentionHead] = [],
                  probabilities: inout [T3AttentionHead: [Float]]) -> Tensor {
        var x = embeddings
        for (index, block) in blocks.enumerated() {
            let heads = observe.filter { $0.layer == index }.map(\.head)
            let (out, p) = block(x, cache: cache, layer: index, rotary: rotary, observedHeads: heads)
            for (h, row) in p { probabilities[T3AttentionHead(layer: index, head: h)] = row }
            x = out
        }
        return rmsNorm(x, weight: finalNorm, eps: config.rmsNormEps)
    }

    /// One decode step over `scratch.hidden` [B, 1, D] (the fed token's embedding, overwritten),
    /// leaving the logits in `scratch.logits` [B, V]: no allocation unless heads are observed.
    func decodeBackbone(scratch: T3DecodeScratch, cache: KVCache, observe: [T3AttentionHead],
                        probabilities: inout [T3AttentionHead: [Float]]) {
        for (index, block) in blocks.enumerated() {
            let heads = observe.isEmpty ? [] : observe.filter { $0.layer == index }.map(\.head)
            let p = block.decode(scratch.hidden, scratch: scratch, cache: cache, layer: index, rotary: rotary, observedHeads: heads)
            for (h, row) in p { probabilities[T3AttentionHead(layer: index, head: h)] = row }
        }
        rmsNorm(scratch.hidden, weight: finalNorm, eps: config.rmsNormEps, into: scratch.norm)
        gemv(scratch.norm.reshaped([scratch.norm.shape[0], config.hiddenSize]), weight: speechHead, into: scratch.logits)
    }

    /// Writes `speech_emb[token] + speech_pos_emb[speechPosition]` into every row of `output` [B, 1, D].
    func writeSpeechStepEmbedding(token: Int, speechPosition: Int, into output: Tensor) {
        let d = config.hiddenSize, rows = output.shape[0]
        output.withUnsafeMutableFloats { out in
            speechEmbedding.withUnsafeFloats { e in
                speechPositions.withUnsafeFloats { p in
                    for j in 0..<d { out[j] = e[token * d + j] + p[speechPosition * d + j] }
                }
            }
            for r in 1..<max(rows, 1) { for j in 0..<d { out[r * d + j] = out[j] } }
        }
    }

    /// Speech logits [B, V] of the last position of `hidden` [B, T, D].
    func lastLogits(_ hidden: Tensor) -> Tensor {
        let t = hidden.shape[1]
        return linear(hidden.slice(1, (t - 1)..<t).contiguous().reshaped([hidden.shape[0], hidden.shape[2]]), weight: speechHead)
    }

    /// A KV cache for `batch` rows and `capacity` positions.
    public func makeCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.layers, batch: batch, heads: config.heads, capacity: capacity, headDim: config.headDim)
    }
}

/// A (layer, head) pair of the backbone whose attention probabilities are observed (0-based).
public struct T3AttentionHead: Hashable, Sendable {
    public var layer: Int
    public var head: Int
    public init(layer: Int, head: Int) {
        self.layer = layer
        self.head = head
    }
}
