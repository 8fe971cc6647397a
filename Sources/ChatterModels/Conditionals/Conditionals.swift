import ChatterTensor
import Foundation

/// A voice: everything T3 and S3Gen need about the speaker (upstream `Conditionals` in
/// chatterbox `tts.py` / `tts_turbo.py`): the T3 part (`T3Cond`) and the S3Gen part (`ref_dict`).
///
/// Built from reference audio by `ConditionalsBuilder`, loaded from upstream's built-in
/// `conds.pt` (`init(checkpoint:)`), and saved / loaded in our own format (`write(to:)`,
/// `init(contentsOf:)`): a safetensors file with upstream's key names (`t3.speaker_emb`,
/// `t3.cond_prompt_speech_tokens`, `t3.emotion_adv`, `gen.prompt_token`, `gen.prompt_token_len`,
/// `gen.prompt_feat`, `gen.prompt_feat_len`, `gen.embedding`) and `__metadata__`
/// `{"format": "chatterstream-conditionals", "formatVersion": "1", "family": …}`. The converter's
/// `conds.safetensors` (the same keys, converted from `conds.pt`) loads too.
public struct Conditionals: Sendable {
    public static let format = "chatterstream-conditionals"
    public static let formatVersion = 1

    /// Upstream `T3Cond` as `prepare_conditionals` fills it.
    public struct T3Part: Sendable, Equatable {
        /// `speaker_emb`: the VoiceEncoder embedding (256 values for the published models).
        public var speakerEmb: [Float]
        /// `cond_prompt_speech_tokens`: S3Tokenizer tokens of the start of the reference (nil: none).
        public var condPromptSpeechTokens: [Int]?
        /// `emotion_adv`: the exaggeration (upstream stores `exaggeration · ones(1, 1, 1)`).
        public var emotionAdv: Float

        public init(speakerEmb: [Float], condPromptSpeechTokens: [Int]?, emotionAdv: Float) {
            self.speakerEmb = speakerEmb
            self.condPromptSpeechTokens = condPromptSpeechTokens
            self.emotionAdv = emotionAdv
        }
    }

    static let integerTypes: Set<DType> = [.i64, .i32, .i16, .i8, .u8]

    public var t3: T3Part
    /// The S3Gen reference (`prompt_token`, `prompt_feat`, `embedding`).
    public var gen: FlowReference
    /// The model family the voice was built for, when known (saved as its name; a name this build
    /// does not know reads back as nil).
    public var family: ModelVariant?

    public init(t3: T3Part, gen: FlowReference, family: ModelVariant? = nil) {
        self.t3 = t3
        self.gen = gen
        self.family = family
    }

    /// Loads our conditionals file or a converted model's `conds.safetensors`.
    public init(contentsOf url: URL) throws {
        let path = url.path
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch let error as TensorError {
            throw ConditionalsError.invalidFile(path: path, tensor: nil, reason: "\(error)")
        }
        if file.metadata["format"] == Self.format {
            let version = file.metadata["formatVersion"] ?? "missing"
            guard version == String(Self.formatVersion) else {
                throw ConditionalsError.unsupportedVersion(path: path, version: version, supported: Self.formatVersion)
            }
        }
        try self.init(store: file, family: file.metadata["family"].flatMap(ModelVariant.named))
    }

    /// The built-in voice of an upstream `conds.pt` (`Conditionals.save`: `{"t3": T3Cond.__dict__,
    /// "gen": ref_dict}`); its tensors may be strided views (`prompt_feat` is saved transposed).
    public init(checkpoint: TorchCheckpoint, family: ModelVariant? = nil) throws {
        let tensors = Dictionary(checkpoint.tensors().map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        try self.init(store: InMemoryWeights(tensors, source: checkpoint.path), family: family)
    }

    /// From any store holding the upstream key names.
    public init(store: some WeightStore, family: ModelVariant? = nil) throws {
        let path = store.source
        func fail(_ key: String?, _ reason: String) -> ConditionalsError { .invalidFile(path: path, tensor: key, reason: reason) }
        func tensor(_ key: String) throws -> Tensor {
            guard store.contains(key) else { throw fail(key, "missing") }
            return try store.tensor(key).contiguous()
        }
        func floats(_ key: String, elements: Int? = nil) throws -> (Tensor, [Float]) {
            let t = try tensor(key)
            guard t.dtype.isFloatingPoint else { throw fail(key, "dtype \(t.dtype) is not floating point") }
            let values = t.converted(to: .f32).scalars()
            if let elements, values.count != elements { throw fail(key, "shape \(t.shape) holds \(values.count) values, expected \(elements)") }
            guard values.allSatisfy(\.isFinite) else { throw fail(key, "holds NaN or infinite values") }
            return (t, values)
        }
        func tokens(_ key: String) throws -> [Int] {
            let t = try tensor(key)
            guard Self.integerTypes.contains(t.dtype) else { throw fail(key, "dtype \(t.dtype) is not an integer type") }
            guard t.rank == 1 || (t.rank == 2 && t.shape[0] == 1) else { throw fail(key, "shape \(t.shape), expected [1, P]") }
            let ids = t.integers().map { Int($0) }
            if let bad = ids.first(where: { $0 < 0 || $0 >= S3Tokenizer.codebookSize }) {
                throw fail(key, "token \(bad) is outside the speech vocabulary 0..<\(S3Tokenizer.codebookSize)")
            }
            return ids
        }
        let (speakerTensor, speaker) = try floats("t3.speaker_emb")
        guard speakerTensor.rank == 1 || (speakerTensor.rank == 2 && speakerTensor.shape[0] == 1), !speaker.isEmpty else {
            throw fail("t3.speaker_emb", "shape \(speakerTensor.shape), expected [1, 256]")
        }
        let prompt = store.contains("t3.cond_prompt_speech_tokens") ? try tokens("t3.cond_prompt_speech_tokens") : nil
        // Upstream's T3Cond default is 0.5 when emotion_adv is absent.
        let emotion = store.contains("t3.emotion_adv") ? try floats("t3.emotion_adv", elements: 1).1[0] : 0.5
        let promptToken = try tokens("gen.prompt_token")
        if store.contains("gen.prompt_token_len") {
            let length = try tensor("gen.prompt_token_len")
            guard Self.integerTypes.contains(length.dtype), length.count == 1, Int(length.integers()[0]) == promptToken.count else {
                throw fail("gen.prompt_token_len", "must be one integer equal to the \(promptToken.count) prompt tokens")
            }
        }
        var feat = try floats("gen.prompt_feat").0.converted(to: .f32)
        if feat.rank == 3, feat.shape[0] == 1 { feat = feat.reshaped([feat.shape[1], feat.shape[2]]) }
        if store.contains("gen.prompt_feat_len") {
            let length = try tensor("gen.prompt_feat_len")
            guard Self.integerTypes.contains(length.dtype), length.count == 1, feat.rank == 2, Int(length.integers()[0]) == feat.shape[0] else {
                throw fail("gen.prompt_feat_len", "must be one integer equal to the prompt_feat frames")
            }
        }
        let embedding = try floats("gen.embedding").0
        let reference: FlowReference
        do { reference = try FlowReference(promptTokens: promptToken, promptMel: feat, embedding: embedding) } catch {
            throw fail(nil, "gen: \(error)")
        }
        self.init(t3: T3Part(speakerEmb: speaker, condPromptSpeechTokens: prompt, emotionAdv: emotion), gen: reference,
                  family: family)
    }

    /// The tensors under upstream's names and dtypes (`[1, …]` batch shapes, ids as I64).
    public var tensors: [(name: String, tensor: Tensor)] {
        var list: [(name: String, tensor: Tensor)] = [
            ("t3.speaker_emb", Tensor(shape: [1, t3.speakerEmb.count], scalars: t3.speakerEmb)),
            ("t3.emotion_adv", Tensor(shape: [1, 1, 1], scalars: [t3.emotionAdv])),
            ("gen.prompt_token", Tensor(shape: [1, gen.promptTokens.count], dtype: .i64, values: gen.promptTokens.map { Int64($0) })),
            ("gen.prompt_token_len", Tensor(shape: [1], dtype: .i64, values: [Int64(gen.promptTokens.count)])),
            ("gen.prompt_feat", gen.promptMel.reshaped([1] + gen.promptMel.shape)),
            ("gen.prompt_feat_len", Tensor(shape: [1], dtype: .i64, values: [Int64(gen.promptMel.shape[0])])),
            ("gen.embedding", gen.embedding.reshaped([1, gen.embedding.count])),
        ]
        if let prompt = t3.condPromptSpeechTokens {
            list.append(("t3.cond_prompt_speech_tokens", Tensor(shape: [1, prompt.count], dtype: .i64, values: prompt.map { Int64($0) })))
        }
        return list
    }

    /// Writes our conditionals file, atomically (a failed write leaves no partial file).
    public func write(to url: URL) throws {
        var metadata = ["format": Self.format, "formatVersion": String(Self.formatVersion)]
        if let family { metadata["family"] = family.name }
        try SafetensorsWriter.write(tensors, metadata: metadata, to: url.path)
    }
}
