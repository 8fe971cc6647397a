import ChatterTensor

/// The speaker/prompt conditioning of the flow (upstream `ref_dict`: prompt_token, prompt_feat,
/// embedding), validated on construction.
public struct FlowReference: Sendable {
    /// Prompt speech tokens (P).
    public let promptTokens: [Int]
    /// Prompt mel, time-major [2P, 80] (upstream `prompt_feat[0]`).
    public let promptMel: Tensor
    /// CAMPPlus x-vector [192].
    public let embedding: Tensor

    public init(promptTokens: [Int], promptMel: Tensor, embedding: Tensor, melChannels: Int = 80,
                tokenMelRatio: Int = 2) throws {
        guard promptMel.rank == 2, promptMel.shape[1] == melChannels else {
            throw FlowError.referenceShape(what: "prompt mel", expected: [2 * promptTokens.count, melChannels], actual: promptMel.shape)
        }
        guard promptMel.shape[0] == tokenMelRatio * promptTokens.count else {
            throw FlowError.promptLengthMismatch(promptTokens: promptTokens.count, promptFrames: promptMel.shape[0],
                                                 expectedFrames: tokenMelRatio * promptTokens.count)
        }
        guard embedding.rank == 1 || (embedding.rank == 2 && embedding.shape[0] == 1) else {
            throw FlowError.referenceShape(what: "speaker embedding", expected: [192], actual: embedding.shape)
        }
        let mel = promptMel.converted(to: .f32).contiguous(), vector = embedding.converted(to: .f32).contiguous()
        guard mel.scalars().allSatisfy(\.isFinite) else { throw FlowError.nonFiniteReference(what: "prompt mel") }
        guard vector.scalars().allSatisfy(\.isFinite) else { throw FlowError.nonFiniteReference(what: "speaker embedding") }
        self.promptTokens = promptTokens
        self.promptMel = mel
        self.embedding = vector.reshaped([vector.count])
    }

    /// A reference from a prompt whose mel and token lengths disagree by construction (a clip whose
    /// length is not a whole number of tokens): keeps the first min(P, ⌊F/ratio⌋) tokens and
    /// ratio times as many frames. Upstream `embed_ref` trims tokens only when F < 2P and keeps an
    /// odd F = 2P + 1, which misaligns mu and cond by a frame and returns 2T − 1 frames; here the
    /// extra frame is dropped instead.
    public static func aligned(promptTokens: [Int], promptMel: Tensor, embedding: Tensor, melChannels: Int = 80,
                               tokenMelRatio: Int = 2) throws -> FlowReference {
        guard promptMel.rank == 2 else {
            throw FlowError.referenceShape(what: "prompt mel", expected: [2 * promptTokens.count, melChannels], actual: promptMel.shape)
        }
        let count = min(promptTokens.count, promptMel.shape[0] / tokenMelRatio)
        return try FlowReference(promptTokens: Array(promptTokens.prefix(count)),
                                 promptMel: promptMel.slice(0, 0..<(count * tokenMelRatio)),
                                 embedding: embedding, melChannels: melChannels, tokenMelRatio: tokenMelRatio)
    }
}
