import ArgumentParser
import ChatterModels
import ChatterTensor
import Foundation

/// T3 decode with the KV cache in f32 and in 16 bits (`KVCache.Precision`), same weights, same run:
/// per weight file and per context length, one decoder per cache precision, timed over the same
/// teacher-forced tokens in alternating rounds (so a noisy neighbour hits every precision alike);
/// then the error budget of each 16-bit cache against the f32 cache on the first weight file (logits
/// over `errorSteps` teacher-forced steps, tokens sampled with the same uniforms).
///
/// A context of N positions means the first timed step attends over N positions: N − 1 prefill rows
/// (a random conditioning of the length that leaves, ahead of the 40-token text, so that short
/// contexts exist for every family; a real voice's conditioning alone is ~376 positions in Turbo)
/// and the fed token.
struct T3KVCacheBench {
    /// (weight precision, file or directory) in the order reported; the first is the error budget's.
    let weights: [(dtype: DType, path: String)]
    let kvCachePrecisions: [KVCache.Precision]
    let contexts: [Int]
    let steps: Int
    let errorSteps: Int
    /// Decode timing alternates the cache precisions token by token (one round per step): on this
    /// shared 2-core VM the load changed within 10-token rounds enough to swing their medians by 2×.
    var decodeRounds: Int { steps }
    let textTokens = 40
    let exaggeration: Float = 0.5

    func cfgWeight(_ c: T3Config) -> Float { c.procedure.classifierFreeGuidance ? 0.5 : 0 }

    struct Inputs {
        var text: [Int], forced: [Int], errorForced: [Int], speaker: [Float], prompt: [Int]
    }

    func run() throws -> [String: Any] {
        precondition(kvCachePrecisions.first == .f32, "the f32 cache is the reference and comes first")
        let firstPath = try T3Bench.resolve(weights[0].path)
        guard let family = ModelVariant.family(ofT3File: firstPath) else {
            throw TensorError.missingTensor(path: firstPath, tensor: "(a published family's T3 file name, or a converted model's manifest.json naming the family)")
        }
        let config = try T3Config.inferred(from: try SafetensorsFile(path: firstPath), like: family.t3)
        let rows = cfgWeight(config) > 0 ? 2 : 1
        // One generator per input, so that no input depends on how many of another were drawn
        // (--t3-steps does not change the error budget's voice or tokens).
        func draw(_ seed: UInt64, _ count: Int, below n: Int) -> [Int] {
            var generator = SplitMix64(seed: seed)
            return (0..<count).map { _ in Int(generator.next() % UInt64(n)) }
        }
        var speakerGenerator = SplitMix64(seed: 0x6B76_0001)
        let speechTokens = config.startSpeechToken  // ordinary speech tokens are below it
        let inputs = Inputs(text: draw(0x6B76_0002, textTokens, below: config.textVocabularySize - 3).map { $0 + 1 },
                            forced: draw(0x6B76_0003, steps, below: speechTokens),
                            errorForced: draw(0x6B76_0004, errorSteps, below: speechTokens),
                            speaker: (0..<config.speakerEmbeddingSize).map { _ in Float(speakerGenerator.nextUnitDouble() * 2 - 1) },
                            prompt: draw(0x6B76_0005, config.speechPromptLength, below: speechTokens))

        var results: [String: Any] = [:]
        var budgets: [String: Any] = [:]
        for (index, (dtype, path)) in weights.enumerated() {
            let file = try T3Bench.open(path)
            let model = try T3(weights: file, config: config)
            let suffix = model.prefillSuffixEmbeddings(wrappedText: try model.wrapText(inputs.text), classifierFree: rows == 2).shape[1]
            var perContext: [String: Any] = [:]
            for context in contexts {
                let conditioningRows = context - 1 - suffix
                guard conditioningRows >= 1 else {
                    throw ValidationError("context \(context) is too short: the text and start rows alone take \(suffix) positions")
                }
                var conditioningGenerator = SplitMix64(seed: UInt64(context))
                let conditioning = Tensor(shape: [conditioningRows, config.hiddenSize],
                                          scalars: (0..<conditioningRows * config.hiddenSize).map { _ in Float(conditioningGenerator.nextUnitDouble() * 2 - 1) })
                var decoders: [T3Decoder] = []
                var prefillMs: [Double] = []
                for precision in kvCachePrecisions {
                    let start = now()
                    decoders.append(try T3Decoder(model: model, conditioning: conditioning, textTokens: inputs.text,
                                                  cfgWeight: cfgWeight(config), maxNewTokens: steps, kvCachePrecision: precision))
                    prefillMs.append(Double(now() - start) / 1e6)
                }
                precondition(decoders[0].prefillLength + 1 == context, "context \(context) built as \(decoders[0].prefillLength + 1)")
                var stepMs = [[Double]](repeating: [], count: decoders.count)
                let perRound = (steps + decodeRounds - 1) / decodeRounds
                for round in 0..<decodeRounds {
                    let tokens = inputs.forced.dropFirst(round * perRound).prefix(perRound)
                    for (i, decoder) in decoders.enumerated() {
                        for token in tokens {
                            let start = now()
                            try decoder.feed(token)
                            stepMs[i].append(Double(now() - start) / 1e6)
                        }
                    }
                }
                let f32Ms = median(stepMs[0])
                var entries: [String: Any] = [:]
                for (i, precision) in kvCachePrecisions.enumerated() {
                    let bytesPerElement = precision == .f32 ? 4 : 2
                    let kvBytes = (0..<steps).map { 2 * config.layers * rows * (context + $0) * config.heads * config.headDim * bytesPerElement }
                        .reduce(0, +) / max(steps, 1)
                    entries[precision.rawValue] = [
                        "decode_ms_per_token_median": rounded(median(stepMs[i]), 3),
                        "decode_ms_per_token": stepMs[i].map { rounded($0, 3) },
                        "vs_f32_cache": rounded(f32Ms / median(stepMs[i]), 3),
                        "kv_cache_bytes_read_per_token_mean": kvBytes,
                        "prefill_ms": rounded(prefillMs[i], 1),
                    ] as [String: Any]
                    note("t3 kv \(dtype) weights, context \(context), \(precision) cache: decode \(rounded(median(stepMs[i]), 2)) ms/token "
                         + "(median of \(stepMs[i].count); \(rounded(f32Ms / median(stepMs[i]), 3))× the f32 cache)")
                }
                perContext["\(context)"] = entries
            }
            results[dtype.rawValue.lowercased()] = ["weights": path, "contexts": perContext] as [String: Any]
            if index == 0 && errorSteps > 0 {
                budgets = try errorBudget(model, config: config, inputs: inputs, weights: dtype)
            }
        }
        let turbo = config.procedure is T3TurboProcedure
        return [
            "family": family.name,
            "isa": KernelISA.current.description,
            "method": "per weight file and context N: T3Decoder prefill over a random conditioning of N − 1 − \(textTokens) text − start rows "
                + "(so the first timed step attends over N positions), one decoder per KV cache precision "
                + "(\(kvCachePrecisions.map(\.rawValue).joined(separator: ", "))); \(steps) teacher-forced decode steps (fixed random speech tokens), "
                + "the cache precisions alternating token by token, median ms/token; "
                + "kv_cache_bytes_read_per_token_mean = 2 (K, V) × layers × rows × positions × heads × head dim × element bytes, averaged over the steps; "
                + "error budget (first weight file) = per-step max|x − x_f32cache| / max|x_f32cache| of the \(turbo ? "" : "CFG-combined ")logits over \(errorSteps) "
                + "teacher-forced steps after the real conditioning (random speaker, \(config.speechPromptLength) prompt tokens), and \(errorSteps) tokens "
                + "sampled (the family's processor chain) with the same SplitMix64 uniforms",
            "rows": rows,
            "layers": config.layers, "heads": config.heads, "head_dim": config.headDim,
            "results": results,
            "error_budget": budgets,
        ]
    }

    /// Each 16-bit cache against the f32 cache on `model`: teacher-forced logits and sampled tokens.
    func errorBudget(_ model: T3, config: T3Config, inputs: Inputs, weights: DType) throws -> [String: Any] {
        let conditioning = try model.conditioning(speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt, exaggeration: exaggeration)
        var logits: [KVCache.Precision: [[Float]]] = [:], tokens: [KVCache.Precision: [Int]] = [:]
        for precision in kvCachePrecisions {
            let decoder = try T3Decoder(model: model, conditioning: conditioning, textTokens: inputs.text, cfgWeight: cfgWeight(config),
                                        maxNewTokens: errorSteps + 1, kvCachePrecision: precision)
            var rows = [decoder.logits]
            for token in inputs.errorForced.dropLast() {
                try decoder.feed(token)
                rows.append(decoder.logits)
            }
            logits[precision] = rows
            var parameters = config.procedure is T3TurboProcedure ? T3SamplingParameters.turbo : T3SamplingParameters()
            parameters.cfgWeight = cfgWeight(config)
            parameters.exaggeration = config.emotionConditioning ? exaggeration : parameters.exaggeration
            parameters.maxNewTokens = errorSteps
            let sampler = try T3TokenIterator(model: model, speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt,
                                              textTokens: inputs.text, parameters: parameters, uniforms: SplitMixUniforms(seed: 0x5eed),
                                              kvCachePrecision: precision)
            var drawn: [Int] = []
            while let token = sampler.next() { drawn.append(token) }
            tokens[precision] = drawn
        }
        var document: [String: Any] = ["weights": weights.rawValue.lowercased()]
        let reference = logits[.f32]!, referenceTokens = tokens[.f32]!
        for precision in kvCachePrecisions.dropFirst() {
            let errors = T3Bench.stepErrors(logits[precision]!, reference)
            let drawn = tokens[precision]!
            let compared = min(drawn.count, referenceTokens.count)
            let equal = zip(drawn, referenceTokens).filter { $0 == $1 }.count
            let prefix = zip(drawn, referenceTokens).prefix { $0 == $1 }.count
            document[precision.rawValue] = [
                "teacher_forced_steps": errors.count,
                "logits_relative_error_max": rounded(errors.max() ?? 0, 7),
                "logits_relative_error_median": rounded(median(errors), 7),
                "logits_relative_error_last": rounded(errors.last ?? 0, 7),
                "sampled_tokens": drawn.count,
                "f32_cache_sampled_tokens": referenceTokens.count,
                "sampled_tokens_identical": equal,
                "sampled_tokens_compared": compared,
                "sampled_common_prefix": prefix,
            ] as [String: Any]
            note("t3 kv \(weights) weights, \(precision) cache vs f32 cache over \(errors.count) teacher-forced steps: logits relative error "
                 + "max \(rounded(errors.max() ?? 0, 6)), median \(rounded(median(errors), 6)); sampled tokens identical \(equal) of \(compared) "
                 + "(common prefix \(prefix))")
        }
        return document
    }
}
