import ChatterTensor

/// The perceiver resampler (`cond_enc.perceiver.`): one `AttentionBlock2` applied twice with the same
/// weights — cross-attention of the learned queries over the prompt, then self-attention.
struct Perceiver {
    let query: Tensor      // [Q, D]
    let norm: LayerNorm
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let projOut: Linear
    let heads: Int

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize
        query = try weights.float32("pre_attention_query", shape: [1, c.perceiverQueries, d]).reshaped([c.perceiverQueries, d])
        norm = try LayerNorm(weights, "attn.norm.", features: d, eps: c.layerNormEps)
        func lin(_ name: String) throws -> Linear { try Linear(weights, "attn.\(name).", out: d, in: d, format: .asStored) }
        toQ = try lin("to_q")
        toK = try lin("to_k")
        toV = try lin("to_v")
        projOut = try lin("proj_out")
        heads = c.perceiverHeads
    }

    /// `AttentionBlock2.forward(x1, x2)` for x1 [N1, D], x2 [N2, D]: x1 + proj(attn(LN(x1), LN(x2))).
    func block(_ x1: Tensor, _ x2: Tensor) -> Tensor {
        let d = x1.shape[1], hd = d / heads
        let a1 = norm(x1)
        let a2 = norm(x2)
        func split(_ y: Tensor) -> Tensor {
            y.reshaped([1, y.shape[0], heads, hd]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = split(toQ(a1))
        let k = split(toK(a2))
        let v = split(toV(a2))
        let o = scaledDotProductAttention(query: q, key: k, value: v)
        let merged = o.permuted([0, 2, 1, 3]).contiguous().reshaped([x1.shape[0], d])
        return add(x1, projOut(merged))
    }

    /// [P, D] prompt embeddings → [Q, D].
    func callAsFunction(_ prompt: Tensor) -> Tensor {
        let y = block(query, prompt)
        return block(y, y)
    }
}

/// `T3CondEnc` (`cond_enc.`): speaker projection, then the prompt's speech embeddings (through the
/// perceiver where the model has one), then the exaggeration ("emotion_adv") projection where the
/// model has one. Turbo has neither perceiver nor exaggeration.
struct T3ConditionEncoder {
    let speaker: Linear
    let emotionColumn: Tensor?   // [1, D]: emotion_adv_fc.weight[:, 0]
    let perceiver: Perceiver?

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize
        speaker = try Linear(weights, "spkr_enc.", out: d, in: c.speakerEmbeddingSize, format: .kernelNative)
        emotionColumn = c.emotionConditioning
            ? try weights.float32("emotion_adv_fc.weight", shape: [d, 1]).contiguous().reshaped([1, d]) : nil
        perceiver = c.perceiverResampler ? try Perceiver(weights: weights.scoped("perceiver."), config: c) : nil
    }

    /// `[spk, prompt…, emo]`, [len_cond, D]; `promptEmbeddings` [P, D] (P may be 0: no prompt).
    func callAsFunction(speakerEmbedding: Tensor, promptEmbeddings: Tensor, exaggeration: Float) -> Tensor {
        var parts = [speaker(speakerEmbedding)]
        if promptEmbeddings.shape[0] > 0 { parts.append(perceiver.map { $0(promptEmbeddings) } ?? promptEmbeddings) }
        if let emotionColumn { parts.append(mul(emotionColumn, exaggeration)) }
        return concatenate(parts, axis: 0)
    }
}
