import ChatterTensor

/// One Llama decoder layer (`tfmr.layers.{i}.`): RMSNorm → rotary self-attention over a KV cache →
/// residual → RMSNorm → SiLU-gated MLP → residual. No biases, no GQA.
///
/// Linear weights are kept in their stored dtype (f32, bf16 or q8_0 go straight to `gemv`); the two
/// CFG rows of a decode step are one [2, D] activation, so each weight is read once per step.
struct LlamaBlock {
    let inputNorm: RMSNorm
    let qProj: Linear
    let kProj: Linear
    let vProj: Linear
    let oProj: Linear
    let postNorm: RMSNorm
    let gateProj: Linear
    let upProj: Linear
    let downProj: Linear
    let heads: Int
    let headDim: Int

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize, inner = c.heads * c.headDim
        func proj(_ prefix: String, out: Int, in inFeatures: Int) throws -> Linear {
            try Linear(weights, prefix, out: out, in: inFeatures, bias: false, format: .asStored)
        }
        inputNorm = try RMSNorm(weights, "input_layernorm.", features: d, eps: c.rmsNormEps)
        qProj = try proj("self_attn.q_proj.", out: inner, in: d)
        kProj = try proj("self_attn.k_proj.", out: inner, in: d)
        vProj = try proj("self_attn.v_proj.", out: inner, in: d)
        oProj = try proj("self_attn.o_proj.", out: d, in: inner)
        postNorm = try RMSNorm(weights, "post_attention_layernorm.", features: d, eps: c.rmsNormEps)
        gateProj = try proj("mlp.gate_proj.", out: c.intermediateSize, in: d)
        upProj = try proj("mlp.up_proj.", out: c.intermediateSize, in: d)
        downProj = try proj("mlp.down_proj.", out: d, in: c.intermediateSize)
        heads = c.heads
        headDim = c.headDim
    }

    /// `x` [B, T, D] at positions `cache.length(layer:)…` → [B, T, D]; appends T tokens to `layer` of
    /// `cache`. When `observedHeads` is non-empty, also returns the attention probabilities of those
    /// heads for batch row 0 and the last `observedQueries` query tokens (rows over all cached keys,
    /// row-major).
    func callAsFunction(_ x: Tensor, cache: KVCache, layer: Int, rotary: RotaryEmbedding,
                        observedHeads: [Int] = [], observedQueries: Int = 1) -> (output: Tensor, probabilities: [Int: [Float]]) {
        let b = x.shape[0], t = x.shape[1], d = x.shape[2]
        let offset = cache.length(layer: layer)
        let n1 = inputNorm(x)
        func heads(_ y: Tensor) -> Tensor {
            y.reshaped([b, t, self.heads, headDim]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = heads(qProj(n1))
        let k = heads(kProj(n1))
        let v = heads(vProj(n1))
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
            let queries = (t - min(max(observedQueries, 1), t))..<t
            for h in observedHeads where h >= 0 && h < self.heads {
                probabilities[h] = p.slice(0, 0..<1).slice(1, h..<(h + 1)).slice(2, queries).contiguous().scalars()
            }
        }
        let merged = attended.permuted([0, 2, 1, 3]).contiguous().reshaped([b, t, self.heads * headDim])
        let h = add(x, oProj(merged))
        let n2 = postNorm(h)
        let gate = gateProj(n2)
        siluInPlace(gate)
        mulInPlace(gate, upProj(n2))
        let out = add(h, downProj(gate))
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
        inputNorm(x, into: s.norm)
        qProj.decode(s.norm, into: s.q)
        kProj.decode(s.norm, into: s.k)
        vProj.decode(s.norm, into: s.v)
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
        oProj.decode(s.attended, into: s.projected)
        addInPlace(x, s.projected)
        postNorm(x, into: s.norm)
        gateProj.decode(s.norm, into: s.gate)
        upProj.decode(s.norm, into: s.up)
        siluInPlace(s.gate)
        mulInPlace(s.gate, s.up)
        downProj.decode(s.gate, into: s.projected)
        addInPlace(x, s.projected)
        return probabilities
    }
}

/// The Llama backbone (`tfmr.layers.*`, `tfmr.norm`) with its llama3-scaled rotary positions.
struct LlamaStack: T3Stack {
    let blocks: [LlamaBlock]
    let finalNorm: RMSNorm
    let rotary: RotaryEmbedding

    init(weights: some WeightStore, config: T3Config) throws {
        blocks = try (0..<config.layers).map { try LlamaBlock(weights: weights.scoped("tfmr.layers.\($0)."), config: config) }
        finalNorm = try RMSNorm(weights, "tfmr.norm.", features: config.hiddenSize, eps: config.rmsNormEps)
        rotary = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta, llama3Scaling: config.ropeScaling)
    }

    /// Rotary positions are unbounded (the speech position table bounds generation instead).
    var maxSequenceLength: Int { Int.max }

    func forward(_ embeddings: Tensor, cache: KVCache, observe: [T3AttentionHead], observedQueries: Int,
                 probabilities: inout [T3AttentionHead: [Float]]) -> Tensor {
        var x = embeddings
        for (index, block) in blocks.enumerated() {
            let heads = observe.filter { $0.layer == index }.map(\.head)
            let (out, p) = block(x, cache: cache, layer: index, rotary: rotary, observedHeads: heads, observedQueries: observedQueries)
            for (h, row) in p { probabilities[T3AttentionHead(layer: index, head: h)] = row }
            x = out
        }
        return finalNorm(x)
    }

    func decode(scratch: T3DecodeScratch, cache: KVCache, observe: [T3AttentionHead],
                probabilities: inout [T3AttentionHead: [Float]]) {
        for (index, block) in blocks.enumerated() {
            let heads = observe.isEmpty ? [] : observe.filter { $0.layer == index }.map(\.head)
            let p = block.decode(scratch.hidden, scratch: scratch, cache: cache, layer: index, rotary: rotary, observedHeads: heads)
            for (h, row) in p { probabilities[T3AttentionHead(layer: index, head: h)] = row }
        }
        finalNorm(scratch.hidden, into: scratch.norm)
    }
}

/// Buffers of one decode step, sized once per utterance (B rows of width D, heads·hd, intermediate, V).
public final class T3DecodeScratch {
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
