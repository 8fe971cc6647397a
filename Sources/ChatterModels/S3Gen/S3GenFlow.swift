import ChatterTensor
import Foundation

/// The S3Gen flow (`CausalMaskedDiffWithXvec`, `flow.*`): tokens + reference → mel.
///
///     let flow = try S3GenFlow(weights: file.scoped("flow."))
///     let mel = try flow.inference(tokens: t, reference: ref, noise: .init(seed: 1))  // [80, 2T]
public struct S3GenFlow: Sendable {
    public let inputEmbedding: Tensor  // [vocab, D]
    let speakerAffine: Linear
    public let encoder: UpsampleConformerEncoder
    let encoderProj: Linear
    public let cfm: CausalCFM

    public var vocabulary: Int { inputEmbedding.shape[0] }
    public var melChannels: Int { encoderProj.outFeatures }
    public var tokenMelRatio: Int { encoder.upsampleFactor }
    public var isMeanflow: Bool { cfm.estimator.isMeanflow }
    /// Upstream default step counts: 2 meanflow, 10 standard.
    public var defaultSteps: Int { isMeanflow ? 2 : 10 }

    /// `weights` addressed without the `flow.` prefix. `decoderHeads`: 8 upstream.
    public init(weights: some WeightStore, decoderHeads: Int = 8) throws {
        inputEmbedding = try weights.anyShapeFloat32("input_embedding.weight")
        speakerAffine = try Linear(weights, "spk_embed_affine_layer.")
        encoder = try UpsampleConformerEncoder(weights: weights.scoped("encoder."))
        encoderProj = try Linear(weights, "encoder_proj.")
        cfm = CausalCFM(estimator: try ConditionalDecoder(weights: weights.scoped("decoder.estimator."), heads: decoderHeads))
    }

    func checkTokens(_ tokens: [Int], offset: Int = 0) throws {
        for (i, token) in tokens.enumerated() where token < 0 || token >= vocabulary {
            throw FlowError.tokenOutOfRange(index: offset + i, token: token, vocabulary: vocabulary)
        }
    }

    /// Encoder output before the projection, [ratio·L, D], for tokens (prompt first).
    public func encode(_ tokens: [Int]) throws -> Tensor {
        guard !tokens.isEmpty else { throw FlowError.noTokens }
        try checkTokens(tokens)
        let d = inputEmbedding.shape[1]
        let x = Tensor(zeros: [tokens.count, d])
        inputEmbedding.contiguous().withUnsafeFloats { table in
            x.withUnsafeMutableFloats { out in
                for (row, token) in tokens.enumerated() {
                    (out.baseAddress! + row * d).update(from: table.baseAddress! + token * d, count: d)
                }
            }
        }
        return encoder(x)
    }

    /// mu [80, ratio·L] (encoder + `encoder_proj`), channel-major as the decoder takes it.
    public func mu(_ tokens: [Int]) throws -> Tensor { project(try encode(tokens)) }

    /// `encoder_proj` of an encoder output [N, D], transposed to the decoder's [80, N].
    public func project(_ h: Tensor) -> Tensor { encoderProj(h).transposed(0, 1).contiguous() }

    /// spks [80] = Linear(e / max(‖e‖, 1e-12)).
    public func speakerConditioning(_ embedding: Tensor) -> Tensor {
        let e = embedding.scalars()
        let norm = max(Float(e.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()), 1e-12)
        return speakerAffine(Tensor(shape: [1, e.count], scalars: e.map { $0 / norm })).reshaped([melChannels])
    }

    /// The decoder inputs for `tokens` after `reference`: mu, spks, cond [80, N'] and the number of
    /// prompt frames F. `finalize = false` drops the last lookahead·ratio frames (upstream's
    /// intent; 0.1.7 itself crashes on that path).
    public func conditioning(tokens: [Int], reference: FlowReference, finalize: Bool = true) throws
        -> (mu: Tensor, spks: Tensor, cond: Tensor, promptFrames: Int) {
        guard !tokens.isEmpty else { throw FlowError.noTokens }
        try checkTokens(reference.promptTokens)
        try checkTokens(tokens, offset: reference.promptTokens.count)
        guard reference.promptMel.shape == [tokenMelRatio * reference.promptTokens.count, melChannels] else {
            throw FlowError.promptLengthMismatch(promptTokens: reference.promptTokens.count, promptFrames: reference.promptMel.shape[0],
                                                 expectedFrames: tokenMelRatio * reference.promptTokens.count)
        }
        let held = finalize ? 0 : encoder.lookahead * tokenMelRatio
        if !finalize && tokens.count <= encoder.lookahead {
            throw FlowError.nothingToEmit(tokens: tokens.count, lookahead: encoder.lookahead)
        }
        var h = try encode(reference.promptTokens + tokens)
        if held > 0 { h = h.slice(0, 0..<(h.shape[0] - held)) }
        let n = h.shape[0]
        let mu = project(h)
        let f = reference.promptMel.shape[0]
        let cond = Tensor(zeros: [melChannels, n])
        reference.promptMel.withUnsafeFloats { src in
            cond.withUnsafeMutableFloats { dst in
                for t in 0..<f { for c in 0..<melChannels { dst[c * n + t] = src[t * melChannels + c] } }
            }
        }
        return (mu, speakerConditioning(reference.embedding), cond, f)
    }

    /// Tokens + reference → mel [80, ratio·T] (natural-log mel, 50 Hz), prompt frames removed.
    /// `noise`: explicit z [80, N] (N = ratio·(P + T), minus the held frames when not finalizing),
    /// or nil for `FlowNoise(seed: seed)` indexed by absolute decoder frame.
    public func inference(tokens: [Int], reference: FlowReference, finalize: Bool = true, steps: Int? = nil,
                          noise: Tensor? = nil, seed: UInt64 = 0) throws -> Tensor {
        let (mu, spks, cond, f) = try conditioning(tokens: tokens, reference: reference, finalize: finalize)
        let n = mu.shape[1]
        let z: Tensor
        if let noise {
            guard noise.shape == [melChannels, n] else {
                throw FlowError.referenceShape(what: "noise", expected: [melChannels, n], actual: noise.shape)
            }
            z = noise
        } else {
            z = FlowNoise(seed: seed, channels: melChannels).frames(0..<n)
        }
        let mel = cfm.solve(noise: z, mu: mu, spks: spks, cond: cond, steps: steps ?? defaultSteps)
        return mel.slice(1, f..<n).contiguous()
    }
}
