import ChatterTensor

/// The dtype each T3 tensor is stored in for a requested precision (`chatter-convert --dtype t3=…`,
/// and the benchmarks' in-memory conversions), so that the rule lives in one place.
///
/// f32, bf16 and f16 apply to every tensor of rank ≥ 2 (matrices and embeddings; the GEMV reads all
/// three in place); vectors stay f32. q8_0 applies only to the matrices every decode step reads
/// through the GEMV (`isDecodeMatrix`) whose rows are whole 32-value blocks; everything else
/// (embedding tables, the conditioning encoder, norms, biases) stays f32: those are read a row at a
/// time or once per prefill, so quantising them would cost precision and save no decode time.
public enum T3WeightPrecision {
    /// The precisions a T3 file can be converted to.
    public static let supported: [DType] = [.f32, .bf16, .f16, .q8_0]

    /// Whether `name` is a backbone projection or the speech head: the weights of a decode step.
    public static func isDecodeMatrix(_ name: String) -> Bool {
        if name == "speech_head.weight" || GPT2Conv1DLayout.isConv1DWeight(name) { return true }
        guard name.hasPrefix("tfmr.layers."), name.hasSuffix("_proj.weight") else { return false }
        return [".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
                ".mlp.gate_proj.weight", ".mlp.up_proj.weight", ".mlp.down_proj.weight"].contains { name.hasSuffix($0) }
    }

    /// The dtype to store the floating-point tensor `name` of `shape` in ([out, in] for matrices, as
    /// the converter writes them) when the file's precision is `target`.
    public static func storedDType(_ name: String, shape: [Int], target: DType) -> DType {
        guard shape.count >= 2 else { return .f32 }
        guard target == .q8_0 else { return target }
        let wholeBlocks = shape.count == 2 && shape[1] % Quantization.blockElements == 0
        return isDecodeMatrix(name) && wholeBlocks ? .q8_0 : .f32
    }
}
