import ChatterTensor
import Foundation

/// The ESPnet relative positional table (`EspnetRelPositionalEncoding`) for a sequence of `n`:
/// 2n−1 rows, row k = E(n−1−k), E(r)[2m] = sin(r·ω_m), E(r)[2m+1] = cos(r·ω_m),
/// ω_m = exp(2m·(−ln 10000 / d)), argument rounded to f32 as upstream.
public func espnetRelativePositions(count n: Int, dim d: Int) -> Tensor {
    precondition(n >= 1 && d % 2 == 0, "relative positions need n ≥ 1 and an even width, got \(n), \(d)")
    let rows = 2 * n - 1
    let factor = Float(-(log(10000.0) / Double(d)))
    let omega = (0..<(d / 2)).map { Float(Foundation.exp(Double(Float(2 * $0) * factor))) }
    var values = [Float](repeating: 0, count: rows * d)
    for k in 0..<rows {
        let r = Float(n - 1 - k)
        for m in 0..<(d / 2) {
            let argument = Double(r * omega[m])
            values[k * d + 2 * m] = Float(Foundation.sin(argument))
            values[k * d + 2 * m + 1] = Float(Foundation.cos(argument))
        }
    }
    return Tensor(shape: [rows, d], scalars: values)
}

/// `RelPositionMultiHeadedAttention` (ESPnet / WeNet "rel_selfattn") without masks (batch 1, full
/// bidirectional attention, as Chatterbox runs it).
struct FlowRelPositionAttention: Sendable {
    let q, k, v, out: Linear
    let pos: Linear
    let biasU: Tensor, biasV: Tensor  // [H, dk]
    let heads: Int

    init(_ weights: some WeightStore) throws {
        q = try Linear(weights, "linear_q.")
        k = try Linear(weights, "linear_k.")
        v = try Linear(weights, "linear_v.")
        out = try Linear(weights, "linear_out.")
        pos = try Linear(weights, "linear_pos.", bias: false)
        biasU = try weights.anyShapeFloat32("pos_bias_u")
        heads = biasU.shape[0]
        biasV = try weights.float32("pos_bias_v", shape: biasU.shape)
    }

    /// x [n, D], positions [2n−1, D] → [n, D]. The attention is the fused (flash-style) kernel:
    /// heads read in place, the positional term formed per (query block, key block) band, no n×n
    /// matrix (`relativePositionSelfAttention`).
    func callAsFunction(_ x: Tensor, positions: Tensor) -> Tensor {
        let context = relativePositionSelfAttention(query: q(x), key: k(x), value: v(x), positions: pos(positions),
                                                    biasU: biasU, biasV: biasV, heads: heads)
        return out(context)
    }
}

/// A pre-LN conformer layer as Chatterbox configures it (no macaron, no conv module):
/// x += MHA_rel(LN(x)); x += W₂·SiLU(W₁·LN(x)); LayerNorm eps 1e-12.
struct FlowConformerLayer: Sendable {
    let normMHA, normFF: LayerNorm
    let attention: FlowRelPositionAttention
    let w1, w2: Linear

    init(_ weights: some WeightStore) throws {
        normMHA = try LayerNorm(weights, "norm_mha.", eps: 1e-12)
        normFF = try LayerNorm(weights, "norm_ff.", eps: 1e-12)
        attention = try FlowRelPositionAttention(weights.scoped("self_attn."))
        w1 = try Linear(weights, "feed_forward.w_1.")
        w2 = try Linear(weights, "feed_forward.w_2.")
    }

    func callAsFunction(_ x: Tensor, positions: Tensor) -> Tensor {
        let h = add(x, attention(normMHA(x), positions: positions))
        let f = w1(normFF(h))
        siluInPlace(f)
        addInPlace(h, w2(f))
        return h
    }
}

/// `LinearNoSubsampling` + `EspnetRelPositionalEncoding`: x ← LN₁ₑ₋₅(x·Wᵀ + b)·√D; the positional
/// table is returned separately, never added.
struct FlowLinearEmbed: Sendable {
    let proj: Linear
    let norm: LayerNorm

    init(_ weights: some WeightStore) throws {
        proj = try Linear(weights, "out.0.")
        norm = try LayerNorm(weights, "out.1.", eps: 1e-5)
    }

    func callAsFunction(_ x: Tensor) -> (Tensor, Tensor) {
        let d = proj.outFeatures
        let y = norm(proj(x))
        scaleInPlace(y, by: Float(Double(d).squareRoot()))
        return (y, espnetRelativePositions(count: x.shape[0], dim: d))
    }
}

/// `UpsampleConformerEncoder` (flow.encoder.*): embed → pre-lookahead → N conformer layers →
/// ×2 nearest upsample + causal k5 conv → up_embed → 4 conformer layers → after_norm.
/// Works at batch 1 on time-major [L, D] rows; the sizes come from the weights.
public struct UpsampleConformerEncoder: Sendable {
    let embed, upEmbed: FlowLinearEmbed
    let lookahead1, lookahead2: Conv1d
    let encoders, upEncoders: [FlowConformerLayer]
    let upConv: Conv1d
    let afterNorm: LayerNorm
    /// Future tokens the pre-lookahead layer reads (3 upstream: conv1 kernel − 1).
    public var lookahead: Int { lookahead1.kernel - 1 }
    /// Output frames per input token (2 upstream).
    public let upsampleFactor: Int
    public var dim: Int { embed.proj.outFeatures }

    public init(weights: some WeightStore) throws {
        embed = try FlowLinearEmbed(weights.scoped("embed."))
        upEmbed = try FlowLinearEmbed(weights.scoped("up_embed."))
        lookahead1 = try Conv1d(weights, "pre_lookahead_layer.conv1.")
        lookahead2 = try Conv1d(weights, "pre_lookahead_layer.conv2.")
        var layers: [FlowConformerLayer] = []
        while weights.contains("encoders.\(layers.count).norm_mha.weight") {
            layers.append(try FlowConformerLayer(weights.scoped("encoders.\(layers.count).")))
        }
        encoders = layers
        layers = []
        while weights.contains("up_encoders.\(layers.count).norm_mha.weight") {
            layers.append(try FlowConformerLayer(weights.scoped("up_encoders.\(layers.count).")))
        }
        upEncoders = layers
        upConv = try Conv1d(weights, "up_layer.conv.")
        upsampleFactor = (upConv.kernel - 1) / 2  // Upsample1D: kernel = 2·stride + 1
        afterNorm = try LayerNorm(weights, "after_norm.", eps: 1e-5)
        guard !encoders.isEmpty, !upEncoders.isEmpty else {
            throw TensorError.missingTensor(path: weights.source, tensor: "encoders.0.norm_mha.weight")
        }
    }

    /// Token embeddings [L, D] → [factor·L, D].
    public func callAsFunction(_ embeddings: Tensor) -> Tensor {
        precondition(embeddings.rank == 2 && embeddings.shape[1] == embed.proj.inFeatures,
                     "encoder expects [L, \(embed.proj.inFeatures)], got \(embeddings.shape)")
        var (x, positions) = embed(embeddings)
        x = preLookahead(x)
        for layer in encoders { x = layer(x, positions: positions) }
        x = upsample(x)
        (x, positions) = upEmbed(x)
        for layer in upEncoders { x = layer(x, positions: positions) }
        return afterNorm(x)
    }

    /// PreLookaheadLayer: right-pad `lookahead` → conv1 → leaky ReLU 0.01 → left-pad 2 → conv2 → + x.
    func preLookahead(_ x: Tensor) -> Tensor {
        let channelsFirst = x.transposed(0, 1).contiguous().unsqueezed(0)  // [1, D, L]
        var y = lookahead1(flowPadTime(channelsFirst, left: 0, right: lookahead))
        leakyReLUInPlace(y, slope: 0.01)
        y = lookahead2(flowPadTime(y, left: lookahead2.kernel - 1, right: 0))
        return add(y.reshaped([y.shape[1], y.shape[2]]).transposed(0, 1), x)
    }

    /// Upsample1D: nearest repeat ×factor, left-pad 2·factor zeros, conv k(2·factor+1).
    func upsample(_ x: Tensor) -> Tensor {
        let n = x.shape[0], d = x.shape[1], f = upsampleFactor
        let repeated = Tensor(zeros: [1, d, n * f])
        x.contiguous().withUnsafeFloats { src in
            repeated.withUnsafeMutableFloats { dst in
                for t in 0..<n {
                    for c in 0..<d {
                        let value = src[t * d + c]
                        for r in 0..<f { dst[c * n * f + t * f + r] = value }
                    }
                }
            }
        }
        let y = upConv(flowPadTime(repeated, left: upConv.kernel - 1, right: 0))
        return y.reshaped([d, n * f]).transposed(0, 1).contiguous()
    }
}
