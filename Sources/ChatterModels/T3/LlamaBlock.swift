import ChatterTensor

/// One Llama decoder layer (`tfmr.layers.{i}.`): RMSNorm → rotary self-attention over a KV cache →
/// residual → RMSNorm → SiLU-gated MLP → residual. No biases, no GQA.
///
/// Linear weights are kept in their stored dtype (f32, bf16 or q8_0 go straight to `gemv`); the two
/// CFG rows of a decode step are one [2, D] activation, so each weight is read once per step.
struct LlamaBlock {
    let inputNorm: Tensor
    let qProj: Tensor
    let kProj: Tensor
    let vProj: Tensor
    let oProj: Tensor
    let postNorm: Tensor
    let gateProj: Tensor
    let upProj: Tensor
    let downProj: Tensor
    let heads: Int
    let headDim: Int
    let eps: Float

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize, inner = c.heads * c.headDim
        inputNorm = try weights.float32("input_layernorm.weight", shape: [d])
        qProj = try weights.tensor("self_attn.q_proj.weight", shape: [inner, d])
        kProj = try weights.tensor("self_attn.k_proj.weight", shape: [inner, d])
        vProj = try weights.tensor("self_attn.v_proj.weight", shape: [inner, d])
        oProj = try weights.tensor("self_attn.o_proj.weight", shape: [d, inner])
        postNorm = try weights.float32("post_attention_layernorm.weight", shape: [d])
        gateProj = try weights.tensor("mlp.gate_proj.weight", shape: [c.intermediateSize, d])
        upProj = try weights.tensor("mlp.up_proj.weight", shape: [c.intermediateSize, d])
        downProj = try weights.tensor("mlp.down_proj.weight", shape: [d, c.intermediateSize])
        heads = c.heads
        headDim = c.headDim
        eps = c.rmsNormEps
    }

    /// `x` [B, T, D] at positions `cache.length(layer:)…` → [B, T, D]; appends T tokens to `layer` of
    /// `cache`. When `observedHeads` is non-empty, also returns the attention probabilities of those
    /// heads for batch row 0 and the last query token (one row over all cached keys each).
    func callAsFunction(_ x: Tensor, cache: KVCache, layer: Int, rotary: RotaryEmbedding,
                        observedHeads: [Int] = []) -> (output: Tensor, probabilities: [Int: [Float]]) {
        let b = x.shape[0], t = x.shape[1], d = x.shape[2]
        let offset = cache.length(layer: layer)
        let n1 = rmsNorm(x, weight: inputNorm, eps: eps)
        func heads(_ y: Tensor) -> Tensor {
            y.reshaped([b, t, self.heads, headDim]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = heads(linear(n1, weight: qProj))
        let k = heads(linear(n1, weight: kProj))
        let v = heads(linear(n1, weight: vProj))
        rotary.applyInPlace(q, positionOffset: offset)
        rotary.applyInPlace(k, positionOffset: offset)
        cache.append(layer: layer, keys: k, values: v)
        let scale = 1 / Float(headDim).squareRoot()
        let attended: Tensor
        var probabilities: [Int: [Float]] = [:]
        if observedHeads.isEmpty {
            attended = cache.attention(layer: layer, query: q, causal: true, scale: scale)
        } else {
            let (out, p) = cache.attentionWithProbabilities(layer: layer, query: q, causal: true, scale: scale)
            attended = out
            for h in observedHeads where h >= 0 && h < self.heads {
                probabilities[h] = p.slice(0, 0..<1).slice(1, h..<(h + 1)).slice(2, (t - 1)..<t).contiguous().scalars()
            }
        }
        let merged = attended.permuted([0, 2, 1, 3]).contiguous().reshaped([b, t, self.heads * headDim])
        let h = add(x, linear(merged, weight: oProj))
        let n2 = rmsNorm(h, weight: postNorm, eps: eps)
        let gate = linear(n2, weight: gateProj)
        siluInPlace(gate)
        mulInPlace(gate, linear(n2, weight: upProj))
        let out = add(h, linear(gate, weight: downProj))
        precondition(out.shape == [b, t, d])
        return (out, probabilities)
    }

    /// One decode token for B rows, in place and allocation-free (except when observing heads):
    /// `x` [B, 1, D] is replaced by the layer's output; `scratch` holds every intermediate.
    /// Same math as `callAsFunction` (with T = 1 the [B, T, H, hd] → [B, H, T, hd] permutation
    /// is the identity on memory, so q/k/v are used as they come out of the GEMVs).
    func decode(_ x: Tensor, scratch s: T3DecodeScratch, cache: KVCache, layer: Int, rotary: RotaryEmbedding,
                observedHeads: [Int] = []) -> [Int: [Float]] {
        let b = x.shape[0]
        let offset = cache.length(layer: layer)
        rmsNorm(x, weight: inputNorm, eps: eps, into: s.norm)
        gemv(s.norm, weight: qProj, into: s.q)
        gemv(s.norm, weight: kProj, into: s.k)
        gemv(s.norm, weight: vProj, into: s.v)
        let q = s.q.reshaped([b, heads, 1, headDim]), k = s.k.reshaped([b, heads, 1, headDim])
        rotary.applyInPlace(q, positionOffset: offset)
        rotary.applyInPlace(k, positionOffset: offset)
        cache.append(layer: layer, keys: k, values: s.v.reshaped([b, heads, 1, headDim]))
        let scale = 1 / Float(headDim).squareRoot()
        var probabilities: [Int: [Float]] = [:]
        let attended = s.attended.reshaped([b, heads, 1, headDim])
        if observedHeads.isEmpty {
            _ = cache.attention(layer: layer, query: q, causal: true, scale: scale, into: attended)
        } else {
            let (out, p) = cache.attentionWithProbabilities(layer: layer, query: q, causal: true, scale: scale)
            out.withUnsafeFloats { src in attended.withUnsafeMutableFloats { dst in _ = dst.update(fromContentsOf: src) } }
            for h in observedHeads where h >= 0 && h < heads {
                probabilities[h] = p.slice(0, 0..<1).slice(1, h..<(h + 1)).contiguous().scalars()
            }
        }
        gemv(s.attended, weight: oProj, into: s.projected)
        addInPlace(x, s.projected)
        rmsNorm(x, weight: postNorm, eps: eps, into: s.norm)
        gemv(s.norm, weight: gateProj, into: s.gate)
        gemv(s.norm, weight: upProj, into: s.up)
        siluInPlace(s.gate)
        mulInPlace(s.gate, s.up)
        gemv(s.gate, weight: downProj, into: s.projected)
        addInPlace(x, s.projected)
        return probabilities
    }
}

/// Buffers of one decode step, sized once per utterance (B rows of width D, heads·hd, intermediate, V).
final class T3DecodeScratch {
    let hidden: Tensor, norm: Tensor, q: Tensor, k: Tensor, v: Tensor, attended: Tensor
    /// GPT-2's fused q|k|v output of a one-row step, [1, 1, 3·heads·hd].
    let qkv: Tensor
    let projected: Tensor, gate: Tensor, up: Tensor, logits: Tensor

    init(batch b: Int, config c: T3Config) {
        let inner = c.heads * c.headDim
        hidden = Tensor(zeros: [b, 1, c.hiddenSize])
        norm = Tensor(zeros: [b, 1, c.hiddenSize])
        q = Tensor(zeros: [b, 1, inner])
        k = Tensor(zeros: [b, 1, inner])
        v = Tensor(zeros: [b, 1, inner])
        qkv = Tensor(zeros: [1, 1, 3 * inner])
        attended = Tensor(zeros: [b, 1, inner])
        projected = Tensor(zeros: [b, 1, c.hiddenSize])
        gate = Tensor(zeros: [b, 1, c.intermediateSize])
        up = Tensor(zeros: [b, 1, c.intermediateSize])
        logits = Tensor(zeros: [b, c.speechVocabularySize])
    }
}
