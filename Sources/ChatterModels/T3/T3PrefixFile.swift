import ChatterTensor
import Foundation

/// `T3PrefixState` on disk, so that a voice's conditioning prefix outlives the process: the next
/// process that loads the same weights starts that voice warm (for Turbo, 376 of ~417 prefill
/// positions skipped: ~1.2 s on 2 cores).
///
/// A safetensors file: per layer `keys.<l>` / `values.<l>` [1, H, len_cond, hd], `conditioning` and
/// `hidden` [len_cond, D], the voice `inputs.speaker_embedding` [S] and `inputs.prompt_tokens` [P]
/// (token ids stored as f32, exact below 2^24), and metadata: the file format, the caller's
/// `fingerprint` of the weights (e.g. the manifest's sha256 of `t3.safetensors` and its dtype), the
/// shapes, and the exaggeration where the model has an emotion input. Reading checks all of it
/// against the model it is for and refuses any disagreement with `T3Error.prefixMismatch`; a file
/// that cannot be parsed gives the reader's `TensorError`. The tensors stay memory-mapped.
extension T3PrefixState {
    /// Bumped whenever the layout or the computation behind a stored prefix changes, so that files
    /// written by another version are rebuilt rather than trusted.
    public static let fileFormat = "chatterstream-t3-prefix-1"

    /// Writes this state to `path` atomically (a temporary file, then a rename).
    public func write(to path: String, fingerprint: String) throws {
        guard let inputs else {
            throw T3Error.prefixMismatch(reason: "built from a bare conditioning tensor: there is no voice to store it for")
        }
        var tensors: [(name: String, tensor: Tensor)] = [("conditioning", conditioning), ("hidden", hidden)]
        for layer in 0..<layers {
            tensors.append(("keys.\(layer)", keys[layer]))
            tensors.append(("values.\(layer)", values[layer]))
        }
        tensors.append(("inputs.speaker_embedding", Tensor(shape: [inputs.speakerEmbedding.count], scalars: inputs.speakerEmbedding)))
        tensors.append(("inputs.prompt_tokens", Tensor(shape: [inputs.promptTokens.count], scalars: inputs.promptTokens.map(Float.init))))
        var metadata = ["format": Self.fileFormat, "fingerprint": fingerprint, "conditioning_length": "\(conditioningLength)",
                        "layers": "\(layers)", "heads": "\(heads)", "head_dim": "\(headDim)"]
        if let exaggeration = inputs.exaggeration { metadata["exaggeration"] = "\(exaggeration.bitPattern)" }
        try SafetensorsWriter.write(tensors, metadata: metadata, to: path)
    }

    /// Reads a state written by `write(to:fingerprint:)` for `model`, whose weights `fingerprint`
    /// identifies. Throws `T3Error.prefixMismatch` when the file is for other weights, another file
    /// format, or shapes other than the model's.
    public init(contentsOf path: String, model: T3, fingerprint: String) throws {
        let file = try SafetensorsFile(path: path)
        let meta = file.metadata
        guard meta["format"] == Self.fileFormat else {
            throw T3Error.prefixMismatch(reason: "\(path) is in format \(meta["format"] ?? "none"), this build reads \(Self.fileFormat)")
        }
        guard meta["fingerprint"] == fingerprint else {
            throw T3Error.prefixMismatch(reason: "\(path) was computed with other weights (fingerprint \(meta["fingerprint"] ?? "none"), these are \(fingerprint))")
        }
        let c = model.config
        guard meta["layers"] == "\(c.layers)", meta["heads"] == "\(c.heads)", meta["head_dim"] == "\(c.headDim)",
              let lengthText = meta["conditioning_length"], let length = Int(lengthText), length > 0, length < model.maxSequenceLength else {
            throw T3Error.prefixMismatch(reason: "\(path) holds \(meta["layers"] ?? "?") layers × \(meta["heads"] ?? "?") heads × \(meta["head_dim"] ?? "?") over \(meta["conditioning_length"] ?? "?") positions; the model has \(c.layers) × \(c.heads) × \(c.headDim)")
        }
        let speaker = try file.tensor("inputs.speaker_embedding", shape: [c.speakerEmbeddingSize]).scalars()
        let promptValues = try file.tensor("inputs.prompt_tokens").scalars()
        let prompt = promptValues.map { Int($0) }
        guard promptValues.allSatisfy({ $0 >= 0 && $0 < Float(c.speechVocabularySize) && $0 == $0.rounded() }),
              c.conditioningLength(promptTokens: prompt.count) == length else {
            throw T3Error.prefixMismatch(reason: "\(path): its \(prompt.count) prompt tokens do not make \(length) conditioning positions on this model")
        }
        var exaggeration: Float = 0
        if c.emotionConditioning {
            guard let bits = meta["exaggeration"].flatMap(UInt32.init) else {
                throw T3Error.prefixMismatch(reason: "\(path) does not say which exaggeration it was built for")
            }
            exaggeration = Float(bitPattern: bits)
        }
        let kv = [1, c.heads, length, c.headDim]
        let keys = try (0..<c.layers).map { try file.tensor("keys.\($0)", shape: kv) }
        let values = try (0..<c.layers).map { try file.tensor("values.\($0)", shape: kv) }
        for tensor in keys + values where tensor.dtype != .f32 {
            throw T3Error.prefixMismatch(reason: "\(path) stores keys/values as \(tensor.dtype), not f32")
        }
        self.init(modelID: model.instanceID, conditioningLength: length, layers: c.layers, heads: c.heads, headDim: c.headDim,
                  inputs: T3ConditioningInputs(config: c, speakerEmbedding: speaker, promptTokens: prompt, exaggeration: exaggeration),
                  keys: keys, values: values,
                  conditioning: try file.tensor("conditioning", shape: [length, c.hiddenSize]),
                  hidden: try file.tensor("hidden", shape: [length, c.hiddenSize]))
    }
}
