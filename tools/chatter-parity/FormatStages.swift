import ChatterTensor
import Foundation

/// `torch-load`: reads a `torch.save` checkpoint with our pickle/zip reader and writes every tensor
/// (made contiguous) under its dotted key path, to compare with upstream's `torch.load`.
struct TorchLoadStage: ParityStage {
    let name = "torch-load"
    let summary = "read a torch.save checkpoint (--model is the .pt/.pth file) and dump its tensors"
    let inputs = ["(none; the input file may be empty)"]
    let outputs = ["<dotted key path> for every tensor, e.g. t3.speaker_emb, gen.prompt_feat"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let checkpoint = try TorchCheckpoint(path: context.model!.path)
        return checkpoint.tensors().map { ($0.name, $0.tensor.copy()) }
    }
}
