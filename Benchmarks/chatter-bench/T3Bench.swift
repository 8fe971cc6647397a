import ChatterModels
import ChatterTensor
import Foundation

/// Full-size T3, the family read from the weights (`T3Config.inferred`): original English (CFG,
/// 150-token speech prompt) or Turbo (GPT-2, one row, 375-token prompt). Prefill of a 40-token text
/// after the prompt (cold, and warm: from the voice's conditioning prefix built once, as a repeated
/// voice runs), then teacher-forced decode steps, for f32, bf16, f16 and q8_0 weights (decode timed in
/// alternating rounds, so every precision sees the same machine); the memory roofline (decode weight
/// bytes ÷ measured read bandwidth) beside each; then upstream PyTorch on the same weights and inputs
/// (spawned afterwards, so the two never share the cores); and each reduced precision's error budget
/// against f32 (logits over `errorSteps` teacher-forced steps, tokens sampled with the same uniforms).
struct T3Bench {
    let weights: String
    /// What upstream PyTorch loads (its own checkpoint layout).
    let upstreamWeights: String
    /// Converted files per reduced precision (`chatter-convert --dtype t3=…`); a precision without
    /// one is converted in memory from `weights` by the same rule (`T3WeightPrecision`).
    let reducedWeights: [DType: String]
    let python: String
    let script: String
    let threads: Int
    let steps: Int
    let prefillRepetitions: Int
    let bandwidthMiB: Int
    /// Teacher-forced steps and sampled tokens of the error budget (0 skips it).
    let errorSteps: Int
    /// Decode timing is split into this many rounds, precisions alternating within each.
    let decodeRounds = 4
    static let precisions: [DType] = [.f32, .bf16, .f16, .q8_0]
    let textTokens = 40
    let exaggeration: Float = 0.5
    /// 0.5 for the original; Turbo has no guidance.
    func cfgWeight(_ c: T3Config) -> Float { c.procedure.classifierFreeGuidance ? 0.5 : 0 }
    /// The prompt the family's conditionals carry (150 original, 375 Turbo).
    func promptTokens(_ c: T3Config) -> Int { c.speechPromptLength }
    /// CFG logit rows (prefill + first steps) compared between precisions and with upstream.
    let logitRows = 4

    /// A safetensors file, or a directory holding one T3 safetensors file (chatter-convert output or
    /// an upstream checkpoint directory).
    static func open(_ path: String) throws -> SafetensorsFile { try SafetensorsFile(path: try resolve(path)) }

    /// The T3 weight file `path` names (itself, or the one in the directory).
    static func resolve(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TensorError.missingTensor(path: path, tensor: "(no such file)")
        }
        guard isDirectory.boolValue else { return path }
        // The T3 weight files a directory can hold (converted, or upstream's three), by name: other
        // safetensors beside them (the engine's built-in voice prefix) are not weights.
        let known = [ConvertedFiles.t3] + ModelVariant.published.flatMap { $0.conversion.filter { $0.group == .t3 }.map(\.source) }
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: path))
        guard let name = known.first(where: present.contains) else {
            throw TensorError.missingTensor(path: path, tensor: known.joined(separator: " or "))
        }
        return (path as NSString).appendingPathComponent(name)
    }

    /// Parameters read per decode step: every layer, the final norm, the speech head, the embedding
    /// rows (Llama: speech + speech position; GPT-2: speech + `wpe`).
    static func decodeParameters(_ c: T3Config) -> Int {
        let d = c.hiddenSize, inner = c.heads * c.headDim, ff = c.intermediateSize
        if case .gpt2 = c.backbone {
            // qkv + out projections, fc + proj, their biases, two LayerNorms (weight + bias).
            let layer = 4 * d * inner + 2 * d * ff + (3 * inner + d + ff + d) + 4 * d
            return c.layers * layer + 2 * d + c.speechVocabularySize * (d + 1) + 2 * d
        }
        let layer = 4 * d * inner + 3 * d * ff + 2 * d
        return c.layers * layer + d + c.speechVocabularySize * d + 2 * d
    }

    struct Inputs {
        var speaker: [Float], prompt: [Int], text: [Int], forced: [Int]
        /// The error budget's teacher-forced tokens (drawn after the others, so those stay as before).
        var errorForced: [Int]
    }

    /// Deterministic inputs (SplitMix64): speaker embedding ~ U(−1, 1), token ids uniform.
    func makeInputs(_ c: T3Config) -> Inputs {
        var generator = SplitMix64(seed: 0x7433_6265_6E63_68)
        func below(_ n: Int) -> Int { Int(generator.next() % UInt64(n)) }
        let speaker = (0..<c.speakerEmbeddingSize).map { _ in Float(generator.nextUnitDouble() * 2 - 1) }
        let speechTokens = c.startSpeechToken  // 6561: ordinary speech tokens are below it
        return Inputs(speaker: speaker, prompt: (0..<promptTokens(c)).map { _ in below(speechTokens) },
                      text: (0..<textTokens).map { _ in 1 + below(c.textVocabularySize - 3) },
                      forced: (0..<steps).map { _ in below(speechTokens) },
                      errorForced: (0..<errorSteps).map { _ in below(speechTokens) })
    }

    struct Run {
        var prefillMs: [Double], stepMs: [Double], prefillLength: Int, logits: [[Float]], loadMs: Double
        var warm: WarmPrefill
    }

    /// The prefill of a repeated voice: the conditioning prefix (`T3PrefixState`) built once, then
    /// `T3Decoder(model:prefix:…)` timed over the same input, as `StreamingTTS` runs it on a cache hit.
    struct WarmPrefill {
        var buildMs: Double, prefillMs: [Double], prefixBytes: Int, conditioningLength: Int, logitsRelativeError: Double
    }

    func warmPrefill(_ model: T3, config: T3Config, inputs: Inputs, coldLogits: [Float], label: String) throws -> WarmPrefill {
        let buildStart = now()
        let prefix = try T3PrefixState(model: model, inputs: T3ConditioningInputs(
            config: config, speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt, exaggeration: exaggeration))
        let buildMs = Double(now() - buildStart) / 1e6
        var prefillMs: [Double] = []
        var decoder: T3Decoder?
        for _ in 0..<prefillRepetitions {
            decoder = nil
            let start = now()
            decoder = try T3Decoder(model: model, prefix: prefix, textTokens: inputs.text, cfgWeight: cfgWeight(config),
                                    maxNewTokens: steps)
            prefillMs.append(Double(now() - start) / 1e6)
        }
        let error = Self.relativeError([decoder!.logits], [coldLogits])
        note("t3 ours \(label) warm prefix: built in \(rounded(buildMs, 1)) ms (\(prefix.conditioningLength) positions, "
             + "\(prefix.byteCount / 1_000_000) MB), prefill from it \(rounded(median(prefillMs), 1)) ms (T0 \(decoder!.prefillLength), "
             + "median of \(prefillRepetitions)), logits vs cold prefill \(rounded(error, 8)) relative")
        return WarmPrefill(buildMs: buildMs, prefillMs: prefillMs, prefixBytes: prefix.byteCount,
                           conditioningLength: prefix.conditioningLength, logitsRelativeError: error)
    }

    /// A model with its cold-prefill timings and the decoder the decode steps run on.
    final class Precision {
        let dtype: DType, source: String, model: T3, loadMs: Double, decodeBytes: Int
        var prefillMs: [Double] = [], stepMs: [Double] = [], logits: [[Float]] = []
        var decoder: T3Decoder!, warm: WarmPrefill!
        init(dtype: DType, source: String, model: T3, loadMs: Double, decodeBytes: Int) {
            (self.dtype, self.source, self.model, self.loadMs, self.decodeBytes) = (dtype, source, model, loadMs, decodeBytes)
        }
    }

    func load(_ store: some WeightStore, dtype: DType, source: String, config: T3Config, parameters: Int) throws -> Precision {
        let loadStart = now()
        let model = try T3(weights: store, config: config)
        let loadMs = Double(now() - loadStart) / 1e6
        // Decode matrices at their stored size, the rest (vectors, two embedding rows) at 4 bytes.
        var matrixElements = 0, matrixBytes = 0
        for name in Self.names(store) where T3WeightPrecision.isDecodeMatrix(name) {
            let t = try store.tensor(name)
            matrixElements += t.count
            matrixBytes += t.byteCount
        }
        return Precision(dtype: dtype, source: source, model: model, loadMs: loadMs,
                         decodeBytes: matrixBytes + (parameters - matrixElements) * 4)
    }

    static func names(_ store: any WeightStore) -> [String] {
        if let file = store as? SafetensorsFile { return file.names }
        return (store as? InMemoryWeights).map { Array($0.tensors.keys) } ?? []
    }

    func prefill(_ p: Precision, config: T3Config, inputs: Inputs) throws {
        for _ in 0..<prefillRepetitions {
            p.decoder = nil
            let start = now()
            let conditioning = try p.model.conditioning(speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt,
                                                        exaggeration: exaggeration)
            p.decoder = try T3Decoder(model: p.model, conditioning: conditioning, textTokens: inputs.text,
                                      cfgWeight: cfgWeight(config), maxNewTokens: steps)
            p.prefillMs.append(Double(now() - start) / 1e6)
        }
        p.logits = [p.decoder.logits]
        p.warm = try warmPrefill(p.model, config: config, inputs: inputs, coldLogits: p.decoder.logits, label: p.dtype.description)
        note("t3 ours \(p.dtype): prefill \(rounded(median(p.prefillMs), 1)) ms (T0 \(p.decoder.prefillLength), median of \(prefillRepetitions))")
    }

    /// Teacher-forced decode of `inputs.forced`, in `decodeRounds` rounds with the precisions taking
    /// turns inside each round (A/B/C/D, A/B/C/D, …), so a noisy neighbour hits them all alike.
    func decodeAlternating(_ all: [Precision], inputs: Inputs) throws {
        let perRound = (inputs.forced.count + decodeRounds - 1) / decodeRounds
        for round in 0..<decodeRounds {
            let tokens = inputs.forced.dropFirst(round * perRound).prefix(perRound)
            for p in all {
                for token in tokens {
                    let start = now()
                    try p.decoder.feed(token)
                    p.stepMs.append(Double(now() - start) / 1e6)
                    if p.logits.count < logitRows { p.logits.append(p.decoder.logits) }
                }
            }
        }
        for p in all {
            note("t3 ours \(p.dtype): decode \(rounded(median(p.stepMs), 2)) ms/token (median of \(p.stepMs.count))")
        }
    }
    /// max |a − b| / max |b| over each row, worst row.
    static func relativeError(_ a: [[Float]], _ b: [[Float]]) -> Double {
        var worst = 0.0
        for (x, y) in zip(a, b) {
            let scale = Double(y.map { abs($0) }.max() ?? 0)
            let diff = Double(zip(x, y).map { abs($0 - $1) }.max() ?? 0)
            worst = max(worst, scale > 0 ? diff / scale : diff)
        }
        return worst
    }

    /// The error budget of `p` against the f32 model: logits of `errorSteps` teacher-forced steps
    /// (fresh decoders from the same prefill inputs), and `errorSteps` tokens sampled by each with the
    /// same injected uniforms (the first divergence changes everything after it, so both the count of
    /// equal positions and the length of the common prefix are given).
    struct ErrorBudget {
        var logits: [[Float]], tokens: [Int]
    }

    func errorBudgetRun(_ p: Precision, config: T3Config, inputs: Inputs) throws -> ErrorBudget {
        let forced = inputs.errorForced
        let conditioning = try p.model.conditioning(speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt, exaggeration: exaggeration)
        let decoder = try T3Decoder(model: p.model, conditioning: conditioning, textTokens: inputs.text, cfgWeight: cfgWeight(config),
                                    maxNewTokens: errorSteps + 1)
        var logits = [decoder.logits]
        for token in forced.dropLast() {
            try decoder.feed(token)
            logits.append(decoder.logits)
        }
        var parameters = config.procedure is T3TurboProcedure ? T3SamplingParameters.turbo : T3SamplingParameters()
        parameters.cfgWeight = cfgWeight(config)
        parameters.exaggeration = config.emotionConditioning ? exaggeration : parameters.exaggeration
        parameters.maxNewTokens = errorSteps
        let sampler = try T3TokenIterator(model: p.model, speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt,
                                          textTokens: inputs.text, parameters: parameters, uniforms: SplitMixUniforms(seed: 0x5eed))
        var tokens: [Int] = []
        while let token = sampler.next() { tokens.append(token) }
        return ErrorBudget(logits: logits, tokens: tokens)
    }

    /// Per-step relative errors (max |a − b| / max |b| of each step's logits).
    static func stepErrors(_ a: [[Float]], _ b: [[Float]]) -> [Double] {
        zip(a, b).map { relativeError([$0], [$1]) }
    }

    func run() throws -> [String: Any] {
        let f32Path = try Self.resolve(weights)
        let f32File = try SafetensorsFile(path: f32Path)
        // The head count is the family's (the weights cannot show it), so the file must name one.
        guard let family = ModelVariant.family(ofT3File: f32Path) else {
            throw TensorError.missingTensor(path: f32Path, tensor: "(a published family's T3 file name, or a converted model's manifest.json naming the family)")
        }
        let config = try T3Config.inferred(from: f32File, like: family.t3)
        let inputs = makeInputs(config)
        // Bandwidth before and after our runs (it varies on a shared VM); the roofline takes the
        // higher figure, so the fraction reached is the conservative one.
        func bandwidth() -> (document: [String: Any], best: Double) {
            let document = MemoryBandwidth(megabytes: bandwidthMiB, repetitions: 9).run()
            let cases = document["cases"] as! [[String: Any]]
            return (document, cases.compactMap { $0["read_gb_s"] as? Double }.max()!)
        }
        let bandwidthBefore = bandwidth()
        let parameters = Self.decodeParameters(config)

        // Every precision is loaded side by side (converted files are mapped; in-memory conversions
        // take heap), prefilled in turn, then decoded in alternating rounds.
        var all = [try load(f32File, dtype: .f32, source: weights, config: config, parameters: parameters)]
        for dtype in Self.precisions.dropFirst() {
            if let path = reducedWeights[dtype] {
                let file = try Self.open(path)
                all.append(try load(file, dtype: dtype, source: path, config: config, parameters: parameters))
            } else {
                var tensors: [String: Tensor] = [:]
                for name in f32File.names {
                    let t = try f32File.tensor(name)
                    let target = T3WeightPrecision.storedDType(name, shape: t.shape, target: dtype)
                    tensors[name] = t.dtype == .f32 && target != .f32 ? t.converted(to: target) : t
                }
                all.append(try load(InMemoryWeights(tensors, source: "\(weights) → \(dtype) in memory", metadata: f32File.metadata),
                                    dtype: dtype, source: "converted in memory from the f32 file (as chatter-convert --dtype t3=\(dtype.rawValue.lowercased()))",
                                    config: config, parameters: parameters))
            }
        }
        for p in all { try prefill(p, config: config, inputs: inputs) }
        try decodeAlternating(all, inputs: inputs)

        var budgets: [DType: ErrorBudget] = [:]
        if errorSteps > 0 {
            for p in all { budgets[p.dtype] = try errorBudgetRun(p, config: config, inputs: inputs) }
        }

        let bandwidthAfter = bandwidth()
        let readGBs = max(bandwidthBefore.best, bandwidthAfter.best)

        // Upstream, after ours.
        let upstream = runUpstream(inputs: inputs, config: config, family: family)
        let upstreamResults = upstream["results"] as? [String: Any]

        var precisions: [String: Any] = [:]
        let rows = cfgWeight(config) > 0 ? 2 : 1
        let prefillLength = all[0].decoder.prefillLength
        let kvBytes = (1...max(steps, 1)).map { i in 2 * config.layers * rows * (prefillLength + i) * config.heads * config.headDim * 4 }
            .reduce(0, +) / max(steps, 1)
        let f32 = all[0]
        for run in all {
            let name = run.dtype.rawValue.lowercased()
            let bytes = run.decodeBytes
            let rooflineMs = Double(bytes) / (readGBs * 1e9) * 1e3
            let decodeMs = median(run.stepMs)
            var entry: [String: Any] = [
                "weights": run.source,
                "model_build_ms": rounded(run.loadMs, 1),
                "prefill_length": run.decoder.prefillLength,
                "prefill_ms": run.prefillMs.map { rounded($0, 1) },
                "prefill_ms_median": rounded(median(run.prefillMs), 1),
                "prefill_vs_f32": rounded(median(run.prefillMs) / median(f32.prefillMs), 3),
                // A repeated voice: the conditioning prefix's keys/values copied from a T3PrefixState
                // built once, the backbone run over the text and start-of-speech rows only.
                "warm_prefix_build_ms": rounded(run.warm.buildMs, 1),
                "warm_prefix_positions": run.warm.conditioningLength,
                "warm_prefix_bytes": run.warm.prefixBytes,
                "warm_prefill_ms": run.warm.prefillMs.map { rounded($0, 1) },
                "warm_prefill_ms_median": rounded(median(run.warm.prefillMs), 1),
                "warm_prefill_speedup_vs_cold": rounded(median(run.prefillMs) / median(run.warm.prefillMs), 2),
                "warm_vs_cold_prefill_logits_relative_error": run.warm.logitsRelativeError,
                "decode_steps": run.stepMs.count,
                "decode_ms_per_token_median": rounded(decodeMs, 2),
                "decode_ms_per_token_mean": rounded(run.stepMs.reduce(0, +) / Double(run.stepMs.count), 2),
                "decode_speedup_vs_f32": rounded(median(f32.stepMs) / decodeMs, 3),
                "decode_weight_bytes_per_token": bytes,
                "roofline_ms_per_token": rounded(rooflineMs, 2),
                "roofline_fraction": rounded(rooflineMs / decodeMs, 3),
                // The f32 KV cache each step also reads (keys and values of every cached position,
                // every layer and row), averaged over the timed steps: weights alone undercount the
                // memory traffic once the prefix is long (Turbo: 417 positions).
                "kv_cache_bytes_per_token_mean": kvBytes,
                "roofline_with_kv_ms_per_token": rounded(Double(bytes + kvBytes) / (readGBs * 1e9) * 1e3, 2),
                "roofline_with_kv_fraction": rounded(Double(bytes + kvBytes) / (readGBs * 1e9) * 1e3 / decodeMs, 3),
            ]
            if run.dtype != .f32 {
                entry["cfg_logits_relative_error_vs_f32"] = rounded(Self.relativeError(run.logits, f32.logits), 6)
            }
            if run.dtype != .f32, let budget = budgets[run.dtype], let reference = budgets[.f32] {
                let errors = Self.stepErrors(budget.logits, reference.logits)
                let compared = min(budget.tokens.count, reference.tokens.count)
                let equal = zip(budget.tokens, reference.tokens).filter { $0 == $1 }.count
                let prefix = zip(budget.tokens, reference.tokens).prefix { $0 == $1 }.count
                entry["error_budget"] = [
                    "teacher_forced_steps": errors.count,
                    "logits_relative_error_max": rounded(errors.max() ?? 0, 6),
                    "logits_relative_error_median": rounded(median(errors), 6),
                    "logits_relative_error_last": rounded(errors.last ?? 0, 6),
                    "sampled_tokens": budget.tokens.count,
                    "f32_sampled_tokens": reference.tokens.count,
                    "sampled_tokens_identical": equal,
                    "sampled_tokens_compared": compared,
                    "sampled_common_prefix": prefix,
                ] as [String: Any]
                note("t3 \(name) vs f32 over \(errors.count) teacher-forced steps: logits relative error max \(rounded(errors.max() ?? 0, 5)), "
                     + "median \(rounded(median(errors), 5)); sampled tokens identical \(equal) of \(compared) (common prefix \(prefix))")
            }
            if let theirs = upstreamResults?[name] as? [String: Any],
               let theirDecode = theirs["decode_ms_per_token_median"] as? Double,
               let theirPrefill = theirs["prefill_ms_median"] as? Double {
                entry["upstream_prefill_ms_median"] = theirPrefill
                entry["upstream_prefill_ms"] = theirs["prefill_ms"]
                entry["upstream_decode_ms_per_token_median"] = theirDecode
                entry["upstream_decode_ms_per_token_mean"] = theirs["decode_ms_per_token_mean"]
                entry["decode_speedup_vs_upstream"] = rounded(theirDecode / decodeMs, 2)
                entry["prefill_speedup_vs_upstream"] = rounded(theirPrefill / median(run.prefillMs), 2)
                entry["warm_prefill_speedup_vs_upstream"] = rounded(theirPrefill / median(run.warm.prefillMs), 2)
                if let rows = theirs["cfg_logits"] as? [[Double]] {
                    let theirLogits = rows.map { $0.map { Float($0) } }
                    entry["cfg_logits_relative_error_vs_upstream"] = rounded(Self.relativeError(run.logits, theirLogits), 6)
                }
            }
            precisions[name] = entry
        }
        var upstreamSummary = upstream
        upstreamSummary["results"] = nil
        let turbo = config.procedure is T3TurboProcedure
        let model = turbo
            ? "T3 \(family.name) (GPT-2, \(config.layers) layers of \(config.hiddenSize), \(config.heads) heads; one row, no guidance); prefill = conditioning (speaker + \(promptTokens(config)) prompt speech "
                + "embeddings) + T3Decoder init over cond|text(\(textTokens))|bos (\(prefillLength) positions); "
            : "T3 original English, CFG weight \(cfgWeight(config)) (2 rows), exaggeration \(exaggeration); prefill = conditioning "
                + "(speaker + perceiver over \(promptTokens(config)) prompt speech tokens) + T3Decoder init over cond|text(\(textTokens)+2)|bos|bos; "
        return [
            "family": family.name,
            "isa": KernelISA.current.description,
            "method": model
                + "warm prefill = T3Decoder init from a T3PrefixState of the same conditioning built once beforehand (a repeated voice; "
                + "conditioning positions copied, backbone over the rest), median of \(prefillRepetitions); "
                + "decode = \(steps) teacher-forced steps (fixed random speech tokens, no sampling chain) in \(decodeRounds) rounds, "
                + "the precisions alternating within each round, median ms/token; "
                + "roofline = decode weight bytes per token (decode matrices at their stored size, the rest at 4 bytes) ÷ read bandwidth "
                + "(the higher of the probes before and after our runs, median of 9 each, best thread count); "
                + "error budget = per-step max|x − f32| / max|f32| of the \(turbo ? "" : "CFG-combined ")logits over \(errorSteps) "
                + "teacher-forced steps, and \(errorSteps) tokens sampled (upstream's processor chain) with the same SplitMix64 uniforms",
            "decode_parameters_per_token": parameters,
            "read_bandwidth_gb_s": readGBs,
            "membw_before": bandwidthBefore.document,
            "membw_after": bandwidthAfter.document,
            "precisions": precisions,
            "upstream": upstreamSummary,
        ]
    }

    /// PyTorch's bf16 decode without avx512_bf16 falls back to scalar code (issue 14: over 15 minutes
    /// for this suite on an AVX2-only CPU), so upstream is timed in bf16 only where the CPU has it.
    var upstreamDTypes: [String] { KernelISA.current >= .avx512bf16 ? ["f32", "bf16"] : ["f32"] }

    /// Spawns the reference Python on the same weights and inputs; on any failure, says why.
    func runUpstream(inputs: Inputs, config: T3Config, family: ModelVariant) -> [String: Any] {
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else {
            note("t3 upstream: skipped (no \(python) or \(script))")
            return ["available": false, "reason": "interpreter \(python) or script \(script) not found"]
        }
        let weightsFile: String
        do { weightsFile = try Self.upstreamWeightsFile(upstreamWeights) } catch {
            note("t3 upstream: skipped (\(error))")
            return ["available": false, "reason": "\(error)"]
        }
        let request: [String: Any] = [
            "weights": weightsFile, "threads": threads, "dtypes": upstreamDTypes,
            "speaker_embedding": inputs.speaker, "prompt_tokens": inputs.prompt, "text_tokens": inputs.text,
            "forced_tokens": inputs.forced, "cfg_weight": cfgWeight(config), "exaggeration": exaggeration,
            "family": family.name,
            "prefill_repetitions": prefillRepetitions, "logit_rows": logitRows,
        ]
        if upstreamDTypes.count < 2 {
            note("t3 upstream: bf16 skipped: this CPU has no avx512_bf16 (ISA \(KernelISA.current)), where PyTorch's bf16 T3 ran for over 15 minutes")
        }
        let requestPath = NSTemporaryDirectory() + "chatter-bench-t3-\(ProcessInfo.processInfo.processIdentifier).json"
        defer { try? FileManager.default.removeItem(atPath: requestPath) }
        do {
            try JSONSerialization.data(withJSONObject: request).write(to: URL(fileURLWithPath: requestPath))
            var document = try runReferencePython(python, arguments: [script, requestPath], threads: threads)
            document["available"] = true
            document["interpreter"] = python
            return document
        } catch {
            note("t3 upstream: failed: \(error)")
            return ["available": false, "reason": "\(error)"]
        }
    }

    /// Upstream loads one safetensors file in its own layout; a directory means the T3 file inside
    /// it. A converted Turbo file (Conv1D weights transposed) cannot be loaded by upstream.
    static func upstreamWeightsFile(_ path: String) throws -> String {
        let file = try open(path)
        guard file.metadata[GPT2Conv1DLayout.metadataKey] == nil else {
            throw TensorError.invalidArgument("\(file.path) is a converted Turbo T3 (Conv1D weights transposed); give upstream's t3_turbo_v1.safetensors")
        }
        return file.path
    }
}
