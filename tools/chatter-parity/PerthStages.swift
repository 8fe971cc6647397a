import ChatterModels
import ChatterTensor
import Foundation

private func perthWatermarker(_ context: StageContext) throws -> PerthWatermarker {
    try PerthWatermarker(checkpointPath: context.model!.path)
}

/// `perth-apply`: `PerthImplicitWatermarker.apply_watermark(wav, sample_rate)` (soxr HQ to 32 kHz,
/// encode, soxr HQ back), or our length-preserving variant.
struct PerthApplyStage: ParityStage {
    let name = "perth-apply"
    let summary = "Perth watermark embedding (--model is perth_net_250000.pth.tar)"
    let inputs = ["wav [T] (mono, float)"]
    let parameters = ["sample_rate (24000)", "preserve_length (false: upstream length 240·⌊⌈4T/3⌉/320⌋ at 24 kHz)"]
    let outputs = ["wav [T'] watermarked"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.monoSignal()
        let rate = try context.int("sample_rate", default: 24_000)
        let perth = try perthWatermarker(context)
        let out = try context.bool("preserve_length", default: false)
            ? perth.applyPreservingLength(wav, sampleRate: rate) : perth.apply(wav, sampleRate: rate)
        return [("wav", Tensor(shape: [out.count], scalars: out))]
    }
}

/// `perth-detect`: `PerthImplicitWatermarker.get_watermark(wav, sample_rate, round)` (polyphase
/// resampling to 32 kHz, decoder, clip to [0, 1], optional round half to even).
struct PerthDetectStage: ParityStage {
    let name = "perth-detect"
    let summary = "Perth watermark detection score (--model is perth_net_250000.pth.tar)"
    let inputs = ["wav [T] (mono, float)"]
    let parameters = ["sample_rate (24000)", "round (true)"]
    let outputs = ["score [1] (0 for silent or too-short input, where upstream gives NaN or fails)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.monoSignal()
        let score = try perthWatermarker(context).detect(
            wav, sampleRate: try context.int("sample_rate", default: 24_000), round: try context.bool("round", default: true))
        return [("score", Tensor(shape: [1], scalars: [score]))]
    }
}
