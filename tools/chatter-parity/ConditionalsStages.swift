import ChatterModels
import ChatterTensor
import Foundation

/// `conditionals`: `prepare_conditionals(reference, exaggeration)` of a model family on a reference
/// audio file (any container `AudioFile` reads), with the VoiceEncoder, S3Tokenizer and CAMPPlus of
/// `--model` (a directory holding `ve.safetensors` and `s3gen.safetensors` or
/// `s3gen_meanflow.safetensors`, upstream or converted).
struct ConditionalsStage: ParityStage {
    let name = "conditionals"
    let summary = "voice conditionals from a reference audio file (--model is a model directory)"
    let inputs = ["(none; the input file may be empty)"]
    let parameters = ["reference (path of the audio file; required)", "family (\(ModelVariant.published.map(\.name).joined(separator: " | ")))",
                      "exaggeration (0.5)", "max_seconds (60)"]
    let outputs = ["t3.speaker_emb [1, 256]", "t3.cond_prompt_speech_tokens [1, ≤150 | ≤375] i64", "t3.emotion_adv [1, 1, 1]",
                   "gen.prompt_token [1, P] i64", "gen.prompt_token_len [1] i64", "gen.prompt_feat [1, 2P, 80]",
                   "gen.prompt_feat_len [1] i64", "gen.embedding [1, 192]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        guard let reference = context.parameter("reference") else { throw StageError.missingParameter("reference") }
        let family = context.string("family", default: "chatterbox")
        guard let variant = ModelVariant.named(family) else {
            throw StageError.badParameter("family", family, ModelVariant.published.map(\.name).joined(separator: ", "))
        }
        let ve = try SafetensorsFile(path: try context.modelFile("ve.safetensors"))
        var s3genPath = try context.modelFile("s3gen.safetensors")
        if !FileManager.default.fileExists(atPath: s3genPath) { s3genPath = try context.modelFile("s3gen_meanflow.safetensors") }
        let start = Date()
        var builder = try ConditionalsBuilder(ve: ve, s3gen: try SafetensorsFile(path: s3genPath))
        builder.maximumReferenceSeconds = Double(try context.float("max_seconds", default: 60))
        let loaded = Date()
        let conds = try builder.build(referenceURL: URL(fileURLWithPath: reference), for: variant,
                                      exaggeration: try context.float("exaggeration", default: 0.5))
        FileHandle.standardError.write(Data(String(format: "conditionals: load %.0f ms, build %.0f ms\n",
                                                   loaded.timeIntervalSince(start) * 1000,
                                                   Date().timeIntervalSince(loaded) * 1000).utf8))
        return conds.tensors
    }
}
