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
}
