import ChatterTensor

/// Where a GPT-2 `Conv1D` weight lives in a weight file, and how it becomes a GEMV matrix.
///
/// HF `Conv1D` stores `weight` as [in, out] (`y = x · W + b`), the transpose of `nn.Linear`. The
/// decode GEMV reads weight rows ([out, in]), so `chatter-convert` writes these tensors transposed,
/// under their upstream names, and marks the file with `metadataKey = "out_in"`; the loader then
/// uses them in place. Any other file (an upstream checkpoint, a fixture) is transposed at load into
/// a heap copy in its stored dtype. Both sides ask this type, so the rule lives in one place.
public enum GPT2Conv1DLayout {
    /// safetensors `__metadata__` key written by the converter.
    public static let metadataKey = "gpt2_conv1d_layout"
    /// Its value: Conv1D weights are stored [out, in].
    public static let transposedValue = "out_in"

    /// Whether `name` is a GPT-2 `Conv1D` weight of T3's backbone (`tfmr.h.{i}.attn.c_attn.weight`,
    /// `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`).
    public static func isConv1DWeight(_ name: String) -> Bool {
        guard name.hasPrefix("tfmr.h."), name.hasSuffix(".weight") else { return false }
        return [".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"]
            .contains { name.hasSuffix($0) }
    }

    /// The [out, in] matrix of the Conv1D weight `key` (logically [inFeatures, outFeatures]).
    static func linearWeight(_ weights: some WeightStore, _ key: String, inFeatures: Int, outFeatures: Int) throws -> Tensor {
        if weights.metadata[metadataKey] == transposedValue {
            return try weights.matrix(key, shape: [outFeatures, inFeatures])
        }
        let stored = try weights.matrix(key, shape: [inFeatures, outFeatures])
        // q8_0 blocks run along the stored rows, so they cannot be transposed as bytes.
        return (stored.dtype == .q8_0 ? stored.converted(to: .f32) : stored).transposed().copy()
    }
}

/// One GPT-2 block (`tfmr.h.{i}.`, HF `GPT2Block`, `activation_function = gelu_new`):
/// x + c_proj(attn(LN₁(x))) → h + c_proj(gelu_new(c_fc(LN₂(h)))). Learned absolute positions
/// are added to the input once, before the first block (see `T3`); the blocks have none.
///
/// The fused `c_attn` [3D, D] (after transposition) runs as one GEMV in a one-row decode step (one
/// pass, one dispatch; q, k and v are then contiguous thirds of its output), and as three [D, D]
/// row ranges — views, not copies — in the prefill and for several rows.
struct GPT2Block {
    let norm1Weight: Tensor, norm1Bias: Tensor
    let qkvProj: Tensor, qkvBias: Tensor
    let qProj: Tensor, kProj: Tensor, vProj: Tensor
    let qBias: Tensor, kBias: Tensor, vBias: Tensor
    let oProj: Tensor, oBias: Tensor
    let norm2Weight: Tensor, norm2Bias: Tensor
    let fcProj: Tensor, fcBias: Tensor
    let outProj: Tensor, outBias: Tensor
    let heads: Int
    let headDim: Int
    let eps: Float

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize, inner = c.heads * c.headDim
        precondition(inner == d, "GPT-2 attention width equals the hidden size")
        norm1Weight = try weights.float32("ln_1.weight", shape: [d])
        norm1Bias = try weights.float32("ln_1.bias", shape: [d])
        let qkv = try GPT2Conv1DLayout.linearWeight(weights, "attn.c_attn.weight", inFeatures: d, outFeatures: 3 * d)
        qkvProj = qkv
        qProj = qkv.slice(0, 0..<d)
        kProj = qkv.slice(0, d..<(2 * d))
        vProj = qkv.slice(0, (2 * d)..<(3 * d))
        let qkvBias = try weights.float32("attn.c_attn.bias", shape: [3 * d])
        self.qkvBias = qkvBias
        qBias = qkvBias.slice(0, 0..<d)
        kBias = qkvBias.slice(0, d..<(2 * d))
        vBias = qkvBias.slice(0, (2 * d)..<(3 * d))
        oProj = try GPT2Conv1DLayout.linearWeight(weights, "attn.c_proj.weight", inFeatures: d, outFeatures: d)
        oBias = try weights.float32("attn.c_proj.bias", shape: [d])
        norm2Weight = try weights.float32("ln_2.weight", shape: [d])
        norm2Bias = try weights.float32("ln_2.bias", shape: [d])
        fcProj = try GPT2Conv1DLayout.linearWeight(weights, "mlp.c_fc.weight", inFeatures: d, outFeatures: c.intermediateSize)
        fcBias = try weights.float32("mlp.c_fc.bias", shape: [c.intermediateSize])
        outProj = try GPT2Conv1DLayout.linearWeight(weights, "mlp.c_proj.weight", inFeatures: c.intermediateSize, outFeatures: d)
        outBias = try weights.float32("mlp.c_proj.bias", shape: [d])
        heads = c.heads
        headDim = c.headDim
        eps = c.layerNormEps
    }

    /// `x` [B, T, D] at positions `cache.length(layer:)…` → [B, T, D]; appends T tokens to `layer`.
    func callAsFunction(_ x: Tensor, cache: KVCache, layer: Int) -> Tensor {
        let b = x.shape[0], t = x.shape[1]
        let n1 = layerNorm(x, weight: norm1Weight, bias: norm1Bias, eps: eps)
        func split(_ y: Tensor) -> Tensor {
            y.reshaped([b, t, heads, headDim]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = split(linear(n1, weight: qProj, bias: qBias))
        let k = split(linear(n1, weight: kProj, bias: kBias))
        let v = split(linear(n1, weight: vProj, bias: vBias))
        cache.append(layer: layer, keys: k, values: v)
        let attended = cache.attention(layer: layer, query: q, causal: true, scale: 1 / Float(headDim).squareRoot())
        let merged = attended.permuted([0, 2, 1, 3]).contiguous().reshaped([b, t, heads * headDim])
        let h = add(x, linear(merged, weight: oProj, bias: oBias))
        let n2 = layerNorm(h, weight: norm2Weight, bias: norm2Bias, eps: eps)
        let inner = linear(n2, weight: fcProj, bias: fcBias)
        geluTanhInPlace(inner)
        return add(h, linear(inner, weight: outProj, bias: outBias))
    }

    /// One decode token for B rows, in place: `x` [B, 1, D] becomes the block's output; every
    /// intermediate lives in `scratch` (T = 1 makes the head permutation the identity on memory).
    func decode(_ x: Tensor, scratch s: T3DecodeScratch, cache: KVCache, layer: Int) {
        let b = x.shape[0], d = heads * headDim
        layerNorm(x, weight: norm1Weight, bias: norm1Bias, eps: eps, into: s.norm)
        let q: Tensor, k: Tensor, v: Tensor
        if b == 1 {
            gemv(s.norm, weight: qkvProj, bias: qkvBias, into: s.qkv)
            q = s.qkv.slice(2, 0..<d).reshaped([1, heads, 1, headDim])
            k = s.qkv.slice(2, d..<(2 * d)).reshaped([1, heads, 1, headDim])
            v = s.qkv.slice(2, (2 * d)..<(3 * d)).reshaped([1, heads, 1, headDim])
        } else {
            gemv(s.norm, weight: qProj, bias: qBias, into: s.q)
            gemv(s.norm, weight: kProj, bias: kBias, into: s.k)
            gemv(s.norm, weight: vProj, bias: vBias, into: s.v)
            (q, k, v) = (s.q.reshaped([b, heads, 1, headDim]), s.k.reshaped([b, heads, 1, headDim]), s.v.reshaped([b, heads, 1, headDim]))
        }
        cache.append(layer: layer, keys: k, values: v)
        _ = cache.attention(layer: layer, query: q, causal: true, scale: 1 / Float(headDim).squareRoot(),
                            into: s.attended.reshaped([b, heads, 1, headDim]))
        gemv(s.attended, weight: oProj, bias: oBias, into: s.projected)
        addInPlace(x, s.projected)
        layerNorm(x, weight: norm2Weight, bias: norm2Bias, eps: eps, into: s.norm)
        gemv(s.norm, weight: fcProj, bias: fcBias, into: s.gate)
        geluTanhInPlace(s.gate)
        gemv(s.gate, weight: outProj, bias: outBias, into: s.projected)
        addInPlace(x, s.projected)
    }
}
