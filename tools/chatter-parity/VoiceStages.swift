import ChatterModels
import ChatterTensor
import Foundation

/// `--model` as a file, or `file` inside it when it is a directory.

/// `voice-encoder`: `VoiceEncoder.embeds_from_wavs([wav], 16000)` (trim top_db 20, rate 1.3).
struct VoiceEncoderStage: ParityStage {
    let name = "voice-encoder"
    let summary = "VoiceEncoder speaker embedding (--model is ve.safetensors or its directory)"
    let inputs = ["wav [T] (16 kHz mono, float)"]
    let parameters = ["trim_top_db (20; 0 skips the trim)", "rate (1.3)", "prefix (empty)"]
    let outputs = ["mel [T', 40] (of the trimmed audio)", "partials [N, E]", "embedding [E]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.monoSignal()
        let store = try SafetensorsFile(path: try context.modelFile("ve.safetensors")).scoped(context.string("prefix", default: ""))
        let encoder = try VoiceEncoder(weights: store)
        let topDB = try context.float("trim_top_db", default: 20)
        let rate = Double(try context.float("rate", default: 1.3))
        let kept = topDB > 0 ? Array(wav[VoiceEncoder.trimSilence(wav, topDB: topDB)]) : wav
        let mel = try encoder.melSpectrogram(kept)
        let partials = try encoder.partialEmbeddings(mel: mel, rate: rate)
        let embedding = try encoder.embed(wav, trimTopDB: topDB > 0 ? topDB : nil, rate: rate)
        return [("mel", mel), ("partials", partials), ("embedding", embedding)]
    }
}

/// `campplus`: `CAMPPlus.inference([wav])` from the fbank on (the per-bin mean is subtracted here).
struct CAMPPlusStage: ParityStage {
    let name = "campplus"
    let summary = "CAMPPlus x-vector from a Kaldi fbank (--model is s3gen.safetensors or its directory)"
    let inputs = ["fbank [T, 80] (torchaudio kaldi.fbank, before mean normalisation)"]
    let parameters = ["prefix (speaker_encoder.)"]
    let outputs = ["xvector [192]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        guard context.input.contains("fbank") else { throw StageError.badInput("tensor 'fbank' [T, 80] is missing") }
        let fbank = try context.tensor("fbank")
        let store = try SafetensorsFile(path: try context.modelFile("s3gen.safetensors"))
            .scoped(context.string("prefix", default: "speaker_encoder."))
        let model = try CAMPPlus(weights: store)
        return [("xvector", try model.embed(fbank: fbank.dtype == .f32 ? fbank : fbank.converted(to: .f32)))]
    }
}
