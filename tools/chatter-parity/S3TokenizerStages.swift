import ChatterModels
import ChatterTensor
import Foundation

/// `s3tokenizer`: Chatterbox's `S3Tokenizer.forward([wav], max_len)` for one 16 kHz wav.
/// `--model` is an `s3gen*.safetensors` file (or its directory, which must hold `s3gen.safetensors`);
/// the config is inferred from the weight shapes (width from conv1, heads = width / 64, block count).
struct S3TokenizerStage: ParityStage {
    let name = "s3tokenizer"
    let summary = "S3TokenizerV2 speech tokens from 16 kHz audio (--model is s3gen.safetensors)"
    let inputs = ["wav [T] (mono, 16 kHz, T > 200)"]
    let parameters = ["max_len (none: keep all; tokens = first max_len·4 mel frames)", "prefix (tokenizer.)"]
    let outputs = ["tokens [n] i64", "mel [128, frames] (after the max_len cut)",
                   "hidden [n, width] (encoder output; only when frames ≤ 3000)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let wav = try context.monoSignal()
        let store = try SafetensorsFile(path: try context.modelFile("s3gen.safetensors")).scoped(context.string("prefix", default: "tokenizer."))
        let tokenizer = try S3Tokenizer(store, config: try S3TokenizerConfig.inferred(from: store))
        let maxLength = context.parameter("max_len") == nil ? nil : try context.int("max_len")
        if let maxLength, maxLength <= 0 { throw StageError.badParameter("max_len", "\(maxLength)", "a positive integer") }
        var mel = try tokenizer.logMelSpectrogram(wav)
        if let maxLength, mel.shape[1] > maxLength * 4 { mel = mel.slice(1, 0..<(maxLength * 4)).contiguous() }
        var outputs: [(name: String, tensor: Tensor)] = [("mel", mel)]
        if mel.shape[1] <= S3Tokenizer.maxFrames {
            let hidden = tokenizer.encode(mel: mel)
            outputs.append(("hidden", hidden))
            outputs.insert(("tokens", int64Tensor(tokenizer.quantize(hidden: hidden))), at: 0)
        } else {
            outputs.insert(("tokens", int64Tensor(tokenizer.tokens(mel: mel))), at: 0)
        }
        return outputs
    }
}
