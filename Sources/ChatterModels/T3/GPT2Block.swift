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

    /// The Conv1D layer `<prefix>weight` / `<prefix>bias` as a `Linear` ([out, in] weight, f32 bias).
    static func linear(_ weights: some WeightStore, _ prefix: String, inFeatures: Int, outFeatures: Int) throws -> Linear {
        let weight = try linearWeight(weights, prefix + "weight", inFeatures: inFeatures, outFeatures: outFeatures)
        return Linear(weight: weight, bias: try weights.float32(prefix + "bias", shape: [outFeatures]))
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
    let norm1: LayerNorm
    /// `attn.c_attn`, fused [3D, D], and its q, k, v row ranges (views of the same weight and bias).
    let qkvProj: Linear
    let qProj: Linear, kProj: Linear, vProj: Linear
    let oProj: Linear
    let norm2: LayerNorm
    let fcProj: Linear
    let outProj: Linear
    let heads: Int
    let headDim: Int

    init(weights: some WeightStore, config c: T3Config) throws {
        let d = c.hiddenSize, inner = c.heads * c.headDim
        precondition(inner == d, "GPT-2 attention width equals the hidden size")
        norm1 = try LayerNorm(weights, "ln_1.", features: d, eps: c.layerNormEps)
        let qkv = try GPT2Conv1DLayout.linear(weights, "attn.c_attn.", inFeatures: d, outFeatures: 3 * d)
        qkvProj = qkv
        func rows(_ range: Range<Int>) -> Linear { Linear(weight: qkv.weight.slice(0, range), bias: qkv.bias!.slice(0, range)) }
        qProj = rows(0..<d)
        kProj = rows(d..<(2 * d))
        vProj = rows((2 * d)..<(3 * d))
        oProj = try GPT2Conv1DLayout.linear(weights, "attn.c_proj.", inFeatures: d, outFeatures: d)
        norm2 = try LayerNorm(weights, "ln_2.", features: d, eps: c.layerNormEps)
        fcProj = try GPT2Conv1DLayout.linear(weights, "mlp.c_fc.", inFeatures: d, outFeatures: c.intermediateSize)
        outProj = try GPT2Conv1DLayout.linear(weights, "mlp.c_proj.", inFeatures: c.intermediateSize, outFeatures: d)
        heads = c.heads
        headDim = c.headDim
    }

    /// `x` [B, T, D] at positions `cache.length(layer:)…` → [B, T, D]; appends T tokens to `layer`.
    func callAsFunction(_ x: Tensor, cache: KVCache, layer: Int) -> Tensor {
        let b = x.shape[0], t = x.shape[1]
        let n1 = norm1(x)
        func split(_ y: Tensor) -> Tensor {
            y.reshaped([b, t, heads, headDim]).permuted([0, 2, 1, 3]).contiguous()
        }
        let q = split(qProj(n1))
        let k = split(kProj(n1))
        let v = split(vProj(n1))
        cache.append(layer: layer, keys: k, values: v)
        let attended = cache.attention(layer: layer, query: q, causal: true, scale: 1 / Float(headDim).squareRoot())
        let merged = attended.permuted([0, 2, 1, 3]).contiguous().reshaped([b, t, heads * headDim])
        let h = add(x, oProj(merged))
        let n2 = norm2(h)
        let inner = fcProj(n2)
        geluTanhInPlace(inner)
        return add(h, outProj(inner))
    }

    /// One decode token for B rows, in place: `x` [B, 1, D] becomes the block's output; every
    /// intermediate lives in `scratch` (T = 1 makes the head permutation the identity on memory).
    func decode(_ x: Tensor, scratch s: T3DecodeScratch, cache: KVCache, layer: Int) {
        let b = x.shape[0], d = heads * headDim
        norm1(x, into: s.norm)
        let q: Tensor, k: Tensor, v: Tensor
        if b == 1 {
            qkvProj.decode(s.norm, into: s.qkv)
            q = s.qkv.slice(2, 0..<d).reshaped([1, heads, 1, headDim])
            k = s.qkv.slice(2, d..<(2 * d)).reshaped([1, heads, 1, headDim])
            v = s.qkv.slice(2, (2 * d)..<(3 * d)).reshaped([1, heads, 1, headDim])
        } else {
            qProj.decode(s.norm, into: s.q)
            kProj.decode(s.norm, into: s.k)
            vProj.decode(s.norm, into: s.v)
            (q, k, v) = (s.q.reshaped([b, heads, 1, headDim]), s.k.reshaped([b, heads, 1, headDim]), s.v.reshaped([b, heads, 1, headDim]))
        }
        cache.append(layer: layer, keys: k, values: v)
        _ = cache.attention(layer: layer, query: q, causal: true, scale: 1 / Float(headDim).squareRoot(),
                            into: s.attended.reshaped([b, heads, 1, headDim]))
        oProj.decode(s.attended, into: s.projected)
        addInPlace(x, s.projected)
        norm2(x, into: s.norm)
        fcProj.decode(s.norm, into: s.gate)
        geluTanhInPlace(s.gate)
        outProj.decode(s.gate, into: s.projected)
        addInPlace(x, s.projected)
    }
}

/// The GPT-2 backbone (`tfmr.h.*`, `tfmr.ln_f`) with learned absolute positions `tfmr.wpe` added to
/// the input, position ids continuing from the cache's length (`GPT2Model.forward(inputs_embeds=…)`).
struct GPT2Stack: T3Stack {
    let blocks: [GPT2Block]
    /// `tfmr.wpe.weight` [maxPositions, D].
    let positions: EmbeddingTable
    let finalNorm: LayerNorm
    let width: Int
    let maxSequenceLength: Int

    init(weights: some WeightStore, config: T3Config) throws {
        guard case let .gpt2(maxPositions) = config.backbone else {
            preconditionFailure("GPT2Stack needs a GPT-2 config, got \(config.backbone)")
        }
        let d = config.hiddenSize
        blocks = try (0..<config.layers).map { try GPT2Block(weights: weights.scoped("tfmr.h.\($0)."), config: config) }
        positions = EmbeddingTable(try weights.tensor("tfmr.wpe.weight", shape: [maxPositions, d]))
        finalNorm = try LayerNorm(weights, "tfmr.ln_f.", features: d, eps: config.layerNormEps)
        width = d
        maxSequenceLength = maxPositions
    }

    func forward(_ embeddings: Tensor, cache: KVCache, observe: [T3AttentionHead], observedQueries: Int,
                 probabilities: inout [T3AttentionHead: [Float]]) -> Tensor {
        let b = embeddings.shape[0], t = embeddings.shape[1], d = width, offset = cache.length(layer: 0)
        var x = embeddings.copy()
        x.withUnsafeMutableFloats { out in
            for r in 0..<b { for i in 0..<t { positions.read(row: offset + i, into: out.baseAddress! + (r * t + i) * d, accumulate: true) } }
        }
        for (index, block) in blocks.enumerated() { x = block(x, cache: cache, layer: index) }
        return finalNorm(x)
    }

    func decode(scratch: T3DecodeScratch, cache: KVCache, observe: [T3AttentionHead],
                probabilities: inout [T3AttentionHead: [Float]]) {
        let d = width, position = cache.length(layer: 0), rows = scratch.hidden.shape[0]
        scratch.hidden.withUnsafeMutableFloats { x in
            for r in 0..<rows { positions.read(row: position, into: x.baseAddress! + r * d, accumulate: true) }
        }
        for (index, block) in blocks.enumerated() { block.decode(scratch.hidden, scratch: scratch, cache: cache, layer: index) }
        finalNorm(scratch.hidden, into: scratch.norm)
    }
}
