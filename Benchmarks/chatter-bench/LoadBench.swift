import ChatterTensor
import Chatterstream
import Foundation

/// Time to open a converted model directory (manifest + mmap of every tensor file + header
/// validation) and to reach every tensor, with the files' pages already in the page cache. Loading
/// is meant to be milliseconds: nothing is copied.
struct LoadBench {
    let model: URL
    let repetitions: Int

    func run() throws -> [String: Any] {
        _ = try ConvertedModel(directory: model)  // warm the page cache for headers
        var openTimes: [Double] = [], touchTimes: [Double] = []
        var tensors = 0, bytes = 0
        for _ in 0..<repetitions {
            let start = now()
            let opened = try ConvertedModel(directory: model)
            let afterOpen = now()
            tensors = 0
            bytes = 0
            for file in opened.manifest.files where file.name.hasSuffix(".safetensors") {
                let tensorFile = try opened.file(file.name)
                for name in tensorFile.names {
                    let tensor = try tensorFile.tensor(name)
                    tensors += 1
                    bytes += tensor.byteCount
                }
            }
            let end = now()
            openTimes.append(Double(afterOpen - start) / 1e6)
            touchTimes.append(Double(end - afterOpen) / 1e6)
        }
        let manifest = try ConvertedModel(directory: model).manifest
        note("load \(manifest.family.rawValue): open \(rounded(median(openTimes), 3)) ms, all \(tensors) tensor views \(rounded(median(touchTimes), 3)) ms")
        return [
            "method": "ConvertedModel(directory:) (manifest, mmap, header validation), then a Tensor view of every tensor; median of \(repetitions); pages already cached",
            "family": manifest.family.rawValue,
            "tensors": tensors,
            "weight_bytes": bytes,
            "open_ms": rounded(median(openTimes), 3),
            "all_tensor_views_ms": rounded(median(touchTimes), 3),
        ]
    }
}
