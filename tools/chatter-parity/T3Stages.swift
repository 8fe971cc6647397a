import ChatterModels
import ChatterTensor
import Foundation

/// Shared set-up of the T3 stages: the model from `--model` (a T3 safetensors file, or a directory
/// holding a published family's upstream T3 file or a converted `t3.safetensors`), its config
/// inferred from the weight shapes (`T3Config.inferred`: GPT-2 when `tfmr.wpe.weight` is present)
/// with the head count from the `heads` parameter, else from the family the file belongs to (its
/// upstream name, or the manifest beside a converted file: `ModelVariant.family(ofT3File:)`), and
/// the conditioning inputs. The family's alignment heads come with it (multilingual V2: sampling
/// runs the alignment-stream analyser).
struct T3StageInputs {
    let model: T3
    let speaker: [Float]
    let prompt: [Int]
    let text: [Int]
    let exaggeration: Float
    let cfgWeight: Float

    static let inputNames = [
        "speaker_emb [256] or [1, 256] f32", "prompt_tokens [P] int (may be empty)",
        "text_tokens [n] int: tokenizer ids, without the 255 … 0 wrapper (Turbo has none)",
    ]
    static let parameterNames = [
        "exaggeration (0.5; Turbo: unused)", "cfg_weight (0.5; Turbo: unused, one row)",
        "heads (the file's family's: 16, Nano 12; required for a file no family names)", "start_speech (6561)",
        "stop_speech (6562)", "weight_prefix (empty: prefix of every weight name in the model file)",
    ]
    static let modelFileNames = ModelVariant.published.flatMap { $0.conversion.filter { $0.group == .t3 }.map(\.source) }
        + [ConvertedFiles.t3]

    init(_ context: StageContext) throws {
        var path = try context.modelFile(Self.modelFileNames[0])
        if !FileManager.default.fileExists(atPath: path) {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            path = Self.modelFileNames.map { directory.appendingPathComponent($0).path }
                .first { FileManager.default.fileExists(atPath: $0) } ?? path
        }
        let weights = try SafetensorsFile(path: path).scoped(context.string("weight_prefix", default: ""))
        let family = ModelVariant.family(ofT3File: path)
        let heads = context.parameter("heads") != nil ? try context.int("heads") : family?.t3.heads
        guard let heads else {
            throw StageError.badInput("\(path) is no published family's T3 file and has no manifest naming one: pass the heads parameter")
        }
        var config = try T3Config.inferred(from: weights, heads: heads,
                                           startSpeechToken: try context.int("start_speech", default: 6561),
                                           stopSpeechToken: try context.int("stop_speech", default: 6562))
        config.alignmentHeads = family?.t3.alignmentHeads
        model = try T3(weights: weights, config: config)
        speaker = try context.tensor("speaker_emb").converted(to: .f32).scalars()
        prompt = try Self.ints(context, "prompt_tokens", optional: true)
        text = try Self.ints(context, "text_tokens")
        exaggeration = try context.float("exaggeration", default: config.emotionConditioning ? 0.5 : 0)
        cfgWeight = config.procedure.classifierFreeGuidance ? try context.float("cfg_weight", default: 0.5) : 0
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
    let summary = "T3 prefill: T3CondEnc, [cond | text | bos | bos] for the CFG rows (Turbo: [cond | text | bos], one row), backbone, last-position logits"
    let inputs = T3StageInputs.inputNames
    let parameters = T3StageInputs.parameterNames
    let outputs = ["cond [1, len_cond, D]", "prefill_embeds [B, T0, D] (B = 2 with cfg_weight > 0)",
                   "prefill_hidden [B, T0, D] (after tfmr.norm / tfmr.ln_f)", "logits [B, V] (speech head, last position)"]
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
    let summary = "T3 teacher-forced decode: CFG logits c + w·(c − u) (Turbo: the one row's logits) after the prefill and after each forced token"
    let inputs = T3StageInputs.inputNames + ["forced_tokens [K] int (fed back as T3.inference / inference_turbo do)"]
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
    let summary = "T3 generation as T3.inference (Turbo: inference_turbo) with torch.multinomial replaced by inverse-CDF draws from `uniforms`"
    let inputs = T3StageInputs.inputNames + ["uniforms [S] f64 or f32: one per token (first id with p > 0 and cumsum_f64(p) > u·sum)"]
    let parameters = T3StageInputs.parameterNames + [
        "temperature (0.8)", "repetition_penalty (1.2)", "min_p (0.05; Turbo: unused)", "top_p (1.0; Turbo 0.95)",
        "top_k (none; Turbo 1000)", "max_new_tokens (S; counts Turbo's first draw: max_gen_len + 1)",
    ]
    let outputs = ["tokens [n] i64 (raw, EOS included)", "probs [n, V] (processed distribution of each draw)",
                   "speech_tokens [m] i64 (cut at EOS, ids < start_speech; Turbo: a final EOS dropped, ids < start_speech)",
                   "alignment_counts [2] i64: draws whose logits the alignment analyser changed (EOS suppressed, EOS forced); 0, 0 without one"]
    let needsModel = true

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)] {
        let t3 = try T3StageInputs(context)
        let u = try context.tensor("uniforms")
        let uniforms: [Double] = u.dtype == .f64
            ? u.withUnsafeRawBytes { Array($0.bindMemory(to: Double.self)) }
            : u.converted(to: .f32).scalars().map(Double.init)
        try require(!uniforms.isEmpty, "uniforms must not be empty")
        let turbo = t3.model.procedure is T3TurboProcedure
        let topK = try context.int("top_k", default: turbo ? 1000 : 0)
        let parameters = T3SamplingParameters(
            temperature: try context.float("temperature", default: 0.8), cfgWeight: t3.cfgWeight, exaggeration: t3.exaggeration,
            repetitionPenalty: try context.float("repetition_penalty", default: 1.2),
            minP: turbo ? 0 : try context.float("min_p", default: 0.05), topP: try context.float("top_p", default: turbo ? 0.95 : 1.0),
            topK: topK > 0 ? topK : nil, maxNewTokens: try context.int("max_new_tokens", default: uniforms.count))
        let iterator = try T3TokenIterator(model: t3.model, speakerEmbedding: t3.speaker, promptTokens: t3.prompt,
                                           textTokens: t3.text, parameters: parameters, uniforms: ReplayedUniforms(uniforms))
        var probs: [Float] = []
        while iterator.next() != nil { probs += iterator.lastDistribution }
        let alignment = iterator.alignment
        return [("alignment_counts", int64Tensor([alignment?.suppressedEndOfSpeech ?? 0, alignment?.forcedEndOfSpeech ?? 0])),
                ("tokens", int64Tensor(iterator.tokens)),
                ("probs", Tensor(shape: [iterator.tokens.count, t3.model.config.speechVocabularySize], scalars: probs)),
                ("speech_tokens", int64Tensor(iterator.speechTokens))]
    }
}
