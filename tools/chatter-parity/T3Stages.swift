import ChatterModels
import ChatterTensor
import Foundation

/// Shared set-up of the T3 stages: the model from `--model` (a `t3_cfg.safetensors` file or a
/// directory holding one), its config inferred from the weight shapes (heads from the `heads`
/// parameter), and the conditioning inputs.
struct T3StageInputs {
    let model: T3
    let speaker: [Float]
    let prompt: [Int]
    let text: [Int]
    let exaggeration: Float
    let cfgWeight: Float

    static let inputNames = [
        "speaker_emb [256] or [1, 256] f32", "prompt_tokens [P] int (may be empty)",
        "text_tokens [n] int: tokenizer ids, without the 255 … 0 wrapper",
    ]
    static let parameterNames = [
        "exaggeration (0.5)", "cfg_weight (0.5)", "heads (16)", "start_speech (6561)", "stop_speech (6562)",
        "weight_prefix (empty: prefix of every weight name in the model file)",
    ]

    init(_ context: StageContext) throws {
        let file = try SafetensorsFile(path: try context.modelFile("t3_cfg.safetensors"))
        let prefix = context.string("weight_prefix", default: "")
        let weights = file.scoped(prefix)
        func shape(_ key: String) throws -> [Int] {
            guard file.contains(prefix + key) else { throw TensorError.missingTensor(path: file.path, tensor: prefix + key) }
            return try file.tensor(prefix + key).shape
        }
        let hidden = try shape("tfmr.norm.weight")[0]
        let heads = try context.int("heads", default: 16)
        try require(heads > 0 && hidden % heads == 0, "heads \(heads) must divide the hidden size \(hidden)")
        let layers = Set(file.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix + "tfmr.layers.") else { return nil }
            return Int(name.dropFirst((prefix + "tfmr.layers.").count).prefix { $0 != "." })
        }).count
        let config = T3Config(
            hiddenSize: hidden, layers: layers, heads: heads, headDim: hidden / heads,
            intermediateSize: try shape("tfmr.layers.0.mlp.up_proj.weight")[0],
            textVocabularySize: try shape("text_emb.weight")[0], speechVocabularySize: try shape("speech_emb.weight")[0],
            startSpeechToken: try context.int("start_speech", default: 6561), stopSpeechToken: try context.int("stop_speech", default: 6562),
            maxTextTokens: try shape("text_pos_emb.emb.weight")[0] - 2, maxSpeechTokens: try shape("speech_pos_emb.emb.weight")[0] - 4,
            speakerEmbeddingSize: try shape("cond_enc.spkr_enc.weight")[1],
            perceiverQueries: try shape("cond_enc.perceiver.pre_attention_query")[1])
        model = try T3(weights: weights, config: config)
        speaker = try context.tensor("speaker_emb").converted(to: .f32).scalars()
        prompt = try Self.ints(context, "prompt_tokens", optional: true)
        text = try Self.ints(context, "text_tokens")
        exaggeration = try context.float("exaggeration", default: 0.5)
        cfgWeight = try context.float("cfg_weight", default: 0.5)
    }

    static func ints(_ context: StageContext, _ name: String, optional: Bool = false) throws -> [Int] {
        guard let tensor = try context.optionalTensor(name) else {
            if optional { return [] }
            throw StageError.badInput("missing tensor '\(name)'")
        }
        try require(!tensor.dtype.isFloatingPoint, "\(name) must be an integer tensor, got \(tensor.dtype)")
        return tensor.integers().map { Int($0) }
    }

    func conditioning() throws -> Tensor {
        try model.conditioning(speakerEmbedding: speaker, promptTokens: prompt, exaggeration: exaggeration)
    }
}

func int64Tensor(_ values: [Int]) -> Tensor {
    Tensor(shape: [values.count], dtype: .i64, values: values.map { Int64($0) })
}

/// `t3-prefill`: conditioning, the CFG prefill input and its backbone output.
struct T3PrefillStage: ParityStage {
    let name = "t3-prefill"
    let summary = "T3 (English) prefill: T3CondEnc, [cond | text | bos | bos] for the CFG rows, backbone, last-position logits"
    let inputs = T3StageInputs.inputNames
    let parameters = T3StageInputs.parameterNames
    let outputs = ["cond [1, len_cond, D]", "prefill_embeds [B, T0, D] (B = 2 with cfg_weight > 0)",
                   "prefill_hidden [B, T0, D] (after tfmr.norm)", "logits [B, V] (speech head, last position)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let t3 = try T3StageInputs(context)
        let cond = try t3.conditioning()
        let decoder = try T3Decoder(model: t3.model, conditioning: cond, textTokens: t3.text, cfgWeight: t3.cfgWeight, maxNewTokens: 1)
        return [("cond", cond.unsqueezed(0)), ("prefill_embeds", decoder.prefillEmbeddings),
                ("prefill_hidden", decoder.prefillHidden), ("logits", decoder.rawLogits)]
    }
}

/// `t3-decode-logits`: teacher-forced decoding, CFG-combined logits per step.
struct T3DecodeLogitsStage: ParityStage {
    let name = "t3-decode-logits"
    let summary = "T3 (English) teacher-forced decode: CFG logits c + w·(c − u) after the prefill and after each forced token"
    let inputs = T3StageInputs.inputNames + ["forced_tokens [K] int (fed back as T3.inference does: speech position i + 1)"]
    let parameters = T3StageInputs.parameterNames
    let outputs = ["cfg_logits [K + 1, V]"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let t3 = try T3StageInputs(context)
        let forced = try T3StageInputs.ints(context, "forced_tokens")
        let decoder = try T3Decoder(model: t3.model, conditioning: try t3.conditioning(), textTokens: t3.text,
                                    cfgWeight: t3.cfgWeight, maxNewTokens: max(forced.count, 1))
        var rows = decoder.logits
        for token in forced {
            try decoder.feed(token)
            rows += decoder.logits
        }
        return [("cfg_logits", Tensor(shape: [forced.count + 1, t3.model.config.speechVocabularySize], scalars: rows))]
    }
}

/// `t3-sample`: the full sampling loop with injected uniforms.
struct T3SampleStage: ParityStage {
    let name = "t3-sample"
    let summary = "T3 (English) generation as T3.inference with torch.multinomial replaced by inverse-CDF draws from `uniforms`"
    let inputs = T3StageInputs.inputNames + ["uniforms [S] f64 or f32: one per token (first id with p > 0 and cumsum_f64(p) > u·sum)"]
    let parameters = T3StageInputs.parameterNames + [
        "temperature (0.8)", "repetition_penalty (1.2)", "min_p (0.05)", "top_p (1.0)", "max_new_tokens (S)",
    ]
    let outputs = ["tokens [n] i64 (raw, EOS included)", "probs [n, V] (processed distribution of each draw)",
                   "speech_tokens [m] i64 (cut at EOS, ids < start_speech)"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let t3 = try T3StageInputs(context)
        let u = try context.tensor("uniforms")
        let uniforms: [Double] = u.dtype == .f64
            ? u.withUnsafeRawBytes { Array($0.bindMemory(to: Double.self)) }
            : u.converted(to: .f32).scalars().map(Double.init)
        try require(!uniforms.isEmpty, "uniforms must not be empty")
        let parameters = T3SamplingParameters(
            temperature: try context.float("temperature", default: 0.8), cfgWeight: t3.cfgWeight, exaggeration: t3.exaggeration,
            repetitionPenalty: try context.float("repetition_penalty", default: 1.2), minP: try context.float("min_p", default: 0.05),
            topP: try context.float("top_p", default: 1.0), maxNewTokens: try context.int("max_new_tokens", default: uniforms.count))
        let iterator = try T3TokenIterator(model: t3.model, speakerEmbedding: t3.speaker, promptTokens: t3.prompt,
                                           textTokens: t3.text, parameters: parameters, uniforms: ReplayedUniforms(uniforms))
        var probs: [Float] = []
        while iterator.next() != nil { probs += iterator.lastDistribution }
        return [("tokens", int64Tensor(iterator.tokens)),
                ("probs", Tensor(shape: [iterator.tokens.count, t3.model.config.speechVocabularySize], scalars: probs)),
                ("speech_tokens", int64Tensor(iterator.speechTokens))]
    }
}
