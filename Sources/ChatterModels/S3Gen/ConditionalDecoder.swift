import ChatterTensor
import Foundation

/// LayerNorm over the channel axis of [B, C, T] (the decoder's `Transpose → LayerNorm → Transpose`).
func flowChannelLayerNorm(_ x: Tensor, _ norm: LayerNorm) -> Tensor {
    layerNormOverChannels(x, weight: norm.weight, bias: norm.bias, eps: norm.eps)
}

/// `CausalBlock1D`: Mish(LN_channels(CausalConv1d k3(x))) on [B, C, T] (masks are all ones at the
/// lengths this port runs, so the `·mask` products are dropped).
struct FlowCausalBlock: Sendable {
    let conv: Conv1d
    let norm: LayerNorm

    init(_ weights: some WeightStore) throws {
        conv = try Conv1d(weights, "block.0.")
        norm = try LayerNorm(weights, "block.2.", eps: 1e-5)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let y = flowChannelLayerNorm(conv(x, causal: true), norm)
        mishInPlace(y)
        return y
    }
}

/// `CausalResnetBlock1D`: h = block1(x) + Linear(Mish(temb)); out = block2(h) + res_conv₁ₓ₁(x).
struct FlowResnetBlock: Sendable {
    let block1, block2: FlowCausalBlock
    let mlp: Linear
    let resConv: Conv1d

    init(_ weights: some WeightStore) throws {
        block1 = try FlowCausalBlock(weights.scoped("block1."))
        block2 = try FlowCausalBlock(weights.scoped("block2."))
        mlp = try Linear(weights, "mlp.1.")
        resConv = try Conv1d(weights, "res_conv.")
    }

    /// x [B, Cin, T], mishTime = Mish(temb) [B, 1024] → [B, Cout, T].
    func callAsFunction(_ x: Tensor, mishTime: Tensor) -> Tensor {
        let h = block1(x)
        let t = mlp(mishTime)  // [B, Cout]
        addInPlace(h, t.unsqueezed(2))
        let out = block2(h)
        addInPlace(out, resConv(x))
        return out
    }
}

/// diffusers `BasicTransformerBlock` as the decoder uses it: self-attention only (q/k/v without
/// bias, 1/√d scale, no mask), exact-GELU feed-forward, LayerNorm eps 1e-5, on [B, T, C].
struct FlowTransformerBlock: Sendable {
    let norm1, norm3: LayerNorm
    let toQ, toK, toV, toOut: Linear
    /// to_q ‖ to_k ‖ to_v stacked [3·inner, C]: one GEMM (one OpenBLAS dispatch, one C pass) for all three.
    let qkv: Tensor
    let ff1, ff2: Linear
    let heads: Int
    let attention: AttentionAlgorithm

    init(_ weights: some WeightStore, heads: Int, attention: AttentionAlgorithm) throws {
        norm1 = try LayerNorm(weights, "norm1.", eps: 1e-5)
        norm3 = try LayerNorm(weights, "norm3.", eps: 1e-5)
        toQ = try Linear(weights, "attn1.to_q.", bias: false)
        toK = try Linear(weights, "attn1.to_k.", bias: false)
        toV = try Linear(weights, "attn1.to_v.", bias: false)
        toOut = try Linear(weights, "attn1.to_out.0.")
        ff1 = try Linear(weights, "ff.net.0.proj.")
        ff2 = try Linear(weights, "ff.net.2.")
        guard toQ.outFeatures % heads == 0 else {
            throw TensorError.invalidArgument("\(weights.source): attention width \(toQ.outFeatures) does not split into \(heads) heads")
        }
        self.heads = heads
        self.attention = attention
        qkv = concatenate([toQ.weight, toK.weight, toV.weight], axis: 0).contiguous()
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let dh = toQ.outFeatures / heads
        let y = norm1(x)
        // [B, T, q‖k‖v] straight into attention, heads merged on the way out: no head copies.
        // bf16 products when the projection is bf16 (S3GenPrecision.bf16), f32 otherwise.
        let merged = packedSelfAttention(linear(y, weight: qkv), heads: heads, scale: 1 / Float(dh).squareRoot(),
                                         products: qkv.dtype == .bf16 ? .bf16 : .f32, algorithm: attention)
        let h = add(x, toOut(merged))
        let f = ff1(norm3(h))
        geluInPlace(f)
        addInPlace(h, ff2(f))
        return h
    }
}

/// A resnet followed by transformer blocks (one stage of the U-Net).
struct FlowDecoderStage: Sendable {
    let resnet: FlowResnetBlock
    let transformers: [FlowTransformerBlock]

    init(_ weights: some WeightStore, heads: Int, attention: AttentionAlgorithm) throws {
        resnet = try FlowResnetBlock(weights.scoped("0."))
        var blocks: [FlowTransformerBlock] = []
        while weights.contains("1.\(blocks.count).norm1.weight") {
            blocks.append(try FlowTransformerBlock(weights.scoped("1.\(blocks.count)."), heads: heads, attention: attention))
        }
        transformers = blocks
    }

    func callAsFunction(_ x: Tensor, mishTime: Tensor) -> Tensor {
        var h = resnet(x, mishTime: mishTime).transposed(1, 2).contiguous()  // [B, T, C]
        for block in transformers { h = block(h) }
        return h.transposed(1, 2).contiguous()
    }
}

/// The CFM estimator `ConditionalDecoder` (causal, one channel level: no temporal resampling),
/// `flow.decoder.estimator.*`. Inputs [B, 80, N]; output velocity [B, 80, N].
public struct ConditionalDecoder: Sendable {
    let timeLinear1, timeLinear2: Linear
    /// `time_embed_mixer` (meanflow only), no bias.
    let timeMixer: Linear?
    let down: FlowDecoderStage
    let downConv: Conv1d
    let mid: [FlowDecoderStage]
    let up: FlowDecoderStage
    let upConv: Conv1d
    let finalBlock: FlowCausalBlock
    let finalProj: Conv1d
    /// Width of the time sinusoid (= the packed input channels, 320 upstream).
    public let timeEmbeddingDim: Int

    /// How the transformer blocks' attention runs. Unfused by default: at the estimator's lengths
    /// (T ≤ 2000) the flash-style kernel measured equal within noise on two threads and ~1 % slower
    /// on one (a block of 128 query rows' scores against every key already sits in L2, and splitting
    /// the keys adds sgemm calls; BENCHMARKS.md, "Fused attention"). Both give the same result to
    /// rounding (FlashAttentionTests).
    public static let defaultAttention = AttentionAlgorithm.unfused

    /// `heads` is not recoverable from the weights (8 upstream: 512 = 8 × 64); `attention`: see
    /// `defaultAttention`.
    public init(weights: some WeightStore, heads: Int = 8, attention: AttentionAlgorithm = defaultAttention) throws {
        timeLinear1 = try Linear(weights, "time_mlp.linear_1.")
        timeLinear2 = try Linear(weights, "time_mlp.linear_2.")
        timeEmbeddingDim = timeLinear1.inFeatures
        timeMixer = weights.contains("time_embed_mixer.weight")
            ? try Linear(weights, "time_embed_mixer.", out: timeLinear2.outFeatures, in: 2 * timeLinear2.outFeatures, bias: false)
            : nil
        down = try FlowDecoderStage(weights.scoped("down_blocks.0."), heads: heads, attention: attention)
        downConv = try Conv1d(weights, "down_blocks.0.2.")
        var stages: [FlowDecoderStage] = []
        while weights.contains("mid_blocks.\(stages.count).0.mlp.1.weight") {
            stages.append(try FlowDecoderStage(weights.scoped("mid_blocks.\(stages.count)."), heads: heads, attention: attention))
        }
        mid = stages
        up = try FlowDecoderStage(weights.scoped("up_blocks.0."), heads: heads, attention: attention)
        upConv = try Conv1d(weights, "up_blocks.0.2.")
        finalBlock = try FlowCausalBlock(weights.scoped("final_block."))
        finalProj = try Conv1d(weights, "final_proj.")
    }

    /// Whether this is the meanflow (Turbo) estimator, which embeds both t and r.
    public var isMeanflow: Bool { timeMixer != nil }
    /// Mel channels (80).
    public var outChannels: Int { finalProj.outChannels }

    /// `SinusoidalPosEmb` (scale 1000, [sin ‖ cos] halves, log spacing over half − 1) for each t.
    func sinusoid(_ times: [Float]) -> Tensor {
        let half = timeEmbeddingDim / 2
        let step = log(10000.0) / Double(half - 1)
        let frequencies = (0..<half).map { Float(Foundation.exp(Double(Float($0) * Float(-step)))) }
        var values = [Float](repeating: 0, count: times.count * timeEmbeddingDim)
        for (row, t) in times.enumerated() {
            let scaled = 1000 * t
            for i in 0..<half {
                let argument = Double(scaled * frequencies[i])
                values[row * timeEmbeddingDim + i] = Float(Foundation.sin(argument))
                values[row * timeEmbeddingDim + half + i] = Float(Foundation.cos(argument))
            }
        }
        return Tensor(shape: [times.count, timeEmbeddingDim], scalars: values)
    }

    /// time_mlp(sinusoid(t)) [B, 1024]; meanflow: mixer([time_mlp(e(t)) ‖ time_mlp(e(r))]).
    public func timeEmbedding(t: [Float], r: [Float]? = nil) -> Tensor {
        func mlp(_ times: [Float]) -> Tensor {
            let h = timeLinear1(sinusoid(times))
            siluInPlace(h)
            return timeLinear2(h)
        }
        let temb = mlp(t)
        guard let timeMixer else { return temb }
        precondition(r?.count == t.count, "the meanflow estimator needs one r per t")
        return timeMixer(concatenate([temb, mlp(r!)], axis: 1))
    }

    /// One estimator pass. x, mu, cond [B, 80, N]; spks [B, 80]; t (and r for meanflow) per row.
    public func callAsFunction(x: Tensor, mu: Tensor, spks: Tensor, cond: Tensor, t: [Float], r: [Float]? = nil) -> Tensor {
        let (b, n) = (x.shape[0], x.shape[2])
        precondition(t.count == b && mu.shape == x.shape && cond.shape == x.shape && spks.shape == [b, x.shape[1]],
                     "estimator inputs disagree: x \(x.shape), mu \(mu.shape), cond \(cond.shape), spks \(spks.shape), \(t.count) times")
        let temb = timeEmbedding(t: t, r: r)
        let mishTime = mish(temb)
        let spksTime = add(Tensor(zeros: [b, spks.shape[1], n]), spks.unsqueezed(2))
        var h = concatenate([x, mu, spksTime, cond], axis: 1)  // [B, 320, N]
        h = down(h, mishTime: mishTime)
        let skip = h
        h = downConv(h, causal: true)
        for stage in mid { h = stage(h, mishTime: mishTime) }
        h = up(concatenate([h, skip], axis: 1), mishTime: mishTime)
        h = upConv(h, causal: true)
        h = finalBlock(h)
        return finalProj(h)
    }
}
