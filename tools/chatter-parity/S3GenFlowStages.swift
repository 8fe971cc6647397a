import ChatterModels
import ChatterTensor
import Foundation

/// Loads the S3Gen flow from `--model`: an `s3gen*.safetensors` file (or a safetensors file with
/// the `flow.*` keys), or a directory holding `s3gen.safetensors` / `s3gen_meanflow.safetensors`
/// (parameter `meanflow`). Parameter `decoder_heads` (8) for reduced test configs.
func loadS3GenFlow(_ context: StageContext) throws -> S3GenFlow {
    let meanflow = try context.bool("meanflow", default: false)
    let file = try SafetensorsFile(path: try context.modelFile(meanflow ? "s3gen_meanflow.safetensors" : "s3gen.safetensors"))
    return try S3GenFlow(weights: file.scoped("flow."), decoderHeads: try context.int("decoder_heads", default: 8))
}

/// Token ids from an integer (or float) tensor of any rank, flattened.
func tokenIDs(_ context: StageContext, _ name: String) throws -> [Int] {
    let t = try context.tensor(name)
    if t.dtype.isFloatingPoint { return t.converted(to: .f32).scalars().map { Int($0) } }
    return t.integers().map { Int($0) }
}

/// Drops leading axes of size 1 (so [1, 80, N] and [80, N] are both accepted).
func squeezedLeading(_ t: Tensor, rank: Int) -> Tensor {
    var shape = t.shape
    while shape.count > rank, shape.first == 1 { shape.removeFirst() }
    return t.reshaped(shape)
}

/// The reference (`prompt_token`, `prompt_feat`, `embedding`) as upstream's ref_dict holds it.
func flowReference(_ context: StageContext) throws -> FlowReference {
    let feat = squeezedLeading(try context.tensor("prompt_feat").converted(to: .f32), rank: 2)
    let embedding = squeezedLeading(try context.tensor("embedding").converted(to: .f32), rank: 1)
    return try FlowReference(promptTokens: try tokenIDs(context, "prompt_token"), promptMel: feat, embedding: embedding)
}

struct S3GenEncoderStage: ParityStage {
    let name = "s3gen-encoder"
    let summary = "S3Gen flow encoder: token embedding + UpsampleConformerEncoder (+ encoder_proj)"
    let inputs = ["tokens [L] or [1, L] int (prompt tokens first)"]
    let parameters = ["meanflow (false: which file in a model directory)", "decoder_heads (8)"]
    let outputs = ["h [2L, 512] (encoder output)", "mu [80, 2L] (after encoder_proj, channel-major)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let flow = try loadS3GenFlow(context)
        let tokens = try tokenIDs(context, "tokens")
        let h = try flow.encode(tokens)
        return [("h", h), ("mu", flow.project(h))]
    }
}

struct S3GenMuStage: ParityStage {
    let name = "s3gen-mu"
    let summary = "S3Gen flow conditioning: mu, spks and cond for prompt + speech tokens (flow.inference before the CFM)"
    let inputs = ["prompt_token [P] int", "token [T] int", "prompt_feat [2P, 80] or [1, 2P, 80]", "embedding [192] or [1, 192]"]
    let parameters = ["finalize (true: false drops the last 6 frames)", "meanflow (false)", "decoder_heads (8)"]
    let outputs = ["mu [80, N]", "spks [80]", "cond [80, N]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let flow = try loadS3GenFlow(context)
        let c = try flow.conditioning(tokens: try tokenIDs(context, "token"), reference: try flowReference(context),
                                      finalize: try context.bool("finalize", default: true))
        return [("mu", c.mu), ("spks", c.spks), ("cond", c.cond)]
    }
}

struct S3GenCFMStepStage: ParityStage {
    let name = "s3gen-cfm-step"
    let summary = "one CFM estimator pass (ConditionalDecoder forward), any batch (2 = the CFG pair)"
    let inputs = ["x [B, 80, N]", "mu [B, 80, N]", "spks [B, 80]", "cond [B, 80, N]"]
    let parameters = ["t", "r (meanflow estimators only)", "meanflow (false)", "decoder_heads (8)"]
    let outputs = ["velocity [B, 80, N]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let estimator = try loadS3GenFlow(context).cfm.estimator
        let x = try context.tensor("x").converted(to: .f32), mu = try context.tensor("mu").converted(to: .f32)
        let spks = try context.tensor("spks").converted(to: .f32), cond = try context.tensor("cond").converted(to: .f32)
        try require(x.rank == 3 && x.shape[1] == estimator.outChannels, "x must be [B, \(estimator.outChannels), N], got \(x.shape)")
        try require(mu.shape == x.shape && cond.shape == x.shape, "mu \(mu.shape) and cond \(cond.shape) must match x \(x.shape)")
        try require(spks.shape == [x.shape[0], x.shape[1]], "spks must be [\(x.shape[0]), \(x.shape[1])], got \(spks.shape)")
        let b = x.shape[0]
        let t = try context.float("t")
        let r: [Float]? = estimator.isMeanflow ? [Float](repeating: try context.float("r"), count: b) : nil
        return [("velocity", estimator(x: x, mu: mu, spks: spks, cond: cond, t: [Float](repeating: t, count: b), r: r))]
    }
}

struct S3GenMelStage: ParityStage {
    let name = "s3gen-mel"
    let summary = "S3Gen flow end to end: tokens + reference → mel (CFM with CFG, or meanflow), prompt frames removed"
    let inputs = ["prompt_token [P] int", "token [T] int", "prompt_feat [2P, 80]", "embedding [192]",
                  "noise [80, N] or [1, 80, N] (optional; N = 2(P+T), minus 6 when not finalizing)"]
    let parameters = ["steps (10 standard, 2 meanflow)", "finalize (true)", "seed (0: frame-indexed noise when no `noise`)",
                      "meanflow (false)", "decoder_heads (8)"]
    let outputs = ["mel [80, 2T] (natural-log mel, 50 Hz)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let flow = try loadS3GenFlow(context)
        let noise = try context.optionalTensor("noise").map { squeezedLeading($0.converted(to: .f32), rank: 2) }
        let mel = try flow.inference(tokens: try tokenIDs(context, "token"), reference: try flowReference(context),
                                     finalize: try context.bool("finalize", default: true),
                                     steps: try context.int("steps", default: flow.defaultSteps), noise: noise,
                                     seed: UInt64(try context.int("seed", default: 0)))
        return [("mel", mel)]
    }
}
