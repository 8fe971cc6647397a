import ChatterModels
import ChatterTensor
import Foundation

/// Full-size T3, the family read from the weights (`T3Config.inferred`): original English (CFG,
/// 150-token speech prompt) or Turbo (GPT-2, one row, 375-token prompt). Prefill of a 40-token text
/// after the prompt (cold, and warm: from the voice's conditioning prefix built once, as a repeated
/// voice runs), then teacher-forced decode steps, for f32 and bf16 weights; the memory roofline
/// (decode weight bytes ÷ measured read bandwidth) beside them; then upstream PyTorch on the same
/// weights and inputs (spawned afterwards, so the two never share the cores); and bf16-vs-f32 logit
/// errors.
struct T3Bench {
    let weights: String
    /// What upstream PyTorch loads (its own checkpoint layout).
    let upstreamWeights: String
    let bf16Weights: String?
    let python: String
    let script: String
    let threads: Int
    let steps: Int
    let prefillRepetitions: Int
    let bandwidthMiB: Int
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
    static func open(_ path: String) throws -> SafetensorsFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TensorError.missingTensor(path: path, tensor: "(no such file)")
        }
        guard isDirectory.boolValue else { return try SafetensorsFile(path: path) }
        // The T3 weight files a directory can hold (converted, or upstream's three), by name: other
        // safetensors beside them (the engine's built-in voice prefix) are not weights.
        let known = [ConvertedFiles.t3] + ModelVariant.published.flatMap { $0.conversion.filter { $0.group == .t3 }.map(\.source) }
        let present = Set(try FileManager.default.contentsOfDirectory(atPath: path))
        guard let name = known.first(where: present.contains) else {
            throw TensorError.missingTensor(path: path, tensor: known.joined(separator: " or "))
        }
        return try SafetensorsFile(path: (path as NSString).appendingPathComponent(name))
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
    }

    /// Deterministic inputs (SplitMix64): speaker embedding ~ U(−1, 1), token ids uniform.
    func makeInputs(_ c: T3Config) -> Inputs {
        var generator = SplitMix64(seed: 0x7433_6265_6E63_68)
        func below(_ n: Int) -> Int { Int(generator.next() % UInt64(n)) }
        let speaker = (0..<c.speakerEmbeddingSize).map { _ in Float(generator.nextUnitDouble() * 2 - 1) }
        let speechTokens = c.startSpeechToken  // 6561: ordinary speech tokens are below it
        return Inputs(speaker: speaker, prompt: (0..<promptTokens(c)).map { _ in below(speechTokens) },
                      text: (0..<textTokens).map { _ in 1 + below(c.textVocabularySize - 3) },
                      forced: (0..<steps).map { _ in below(speechTokens) })
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

    func runOurs(_ store: some WeightStore, config: T3Config, inputs: Inputs, label: String) throws -> Run {
        let loadStart = now()
        let model = try T3(weights: store, config: config)
        let loadMs = Double(now() - loadStart) / 1e6
        var prefillMs: [Double] = []
        var decoder: T3Decoder?
        for _ in 0..<prefillRepetitions {
            decoder = nil
            let start = now()
            let conditioning = try model.conditioning(speakerEmbedding: inputs.speaker, promptTokens: inputs.prompt,
                                                      exaggeration: exaggeration)
            decoder = try T3Decoder(model: model, conditioning: conditioning, textTokens: inputs.text,
                                    cfgWeight: cfgWeight(config), maxNewTokens: steps)
            prefillMs.append(Double(now() - start) / 1e6)
        }
        let d = decoder!
        var logits = [d.logits]
        let warm = try warmPrefill(model, config: config, inputs: inputs, coldLogits: d.logits, label: label)
        var stepMs: [Double] = []
        for token in inputs.forced {
            let start = now()
            try d.feed(token)
            stepMs.append(Double(now() - start) / 1e6)
            if logits.count < logitRows { logits.append(d.logits) }
        }
        note("t3 ours \(label): prefill \(rounded(median(prefillMs), 1)) ms (T0 \(d.prefillLength), median of \(prefillRepetitions)), "
             + "decode \(rounded(median(stepMs), 2)) ms/token (median of \(stepMs.count))")
        return Run(prefillMs: prefillMs, stepMs: stepMs, prefillLength: d.prefillLength, logits: logits, loadMs: loadMs, warm: warm)
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

    func run() throws -> [String: Any] {
        let f32File = try Self.open(weights)
        let config = try T3Config.inferred(from: f32File)
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

        // f32, then bf16 (the f32 model is released before bf16 is built).
        let f32 = try runOurs(f32File, config: config, inputs: inputs, label: "f32")
        let bf16Store: any WeightStore
        let bf16Source: String
        if let bf16Weights {
            bf16Store = try Self.open(bf16Weights)
            bf16Source = bf16Weights
        } else {
            var tensors: [String: Tensor] = [:]
            for name in f32File.names {
                let t = try f32File.tensor(name)
                tensors[name] = t.rank >= 2 && t.dtype == .f32 ? t.converted(to: .bf16) : t
            }
            bf16Store = InMemoryWeights(tensors, source: "\(weights) → bf16 in memory", metadata: f32File.metadata)
            bf16Source = "converted in memory from the f32 file (rank ≥ 2 tensors → bf16, as chatter-convert --dtype t3=bf16)"
        }
        let bf16 = try runOurs(bf16Store, config: config, inputs: inputs, label: "bf16")
        let bf16Error = Self.relativeError(bf16.logits, f32.logits)
        note("t3 bf16 vs f32 CFG logits (\(bf16.logits.count) rows): max relative error \(rounded(bf16Error, 5))")

        let bandwidthAfter = bandwidth()
        let readGBs = max(bandwidthBefore.best, bandwidthAfter.best)

        // Upstream, after ours.
        let upstream = runUpstream(inputs: inputs, config: config)
        let upstreamResults = upstream["results"] as? [String: Any]

        var precisions: [String: Any] = [:]
        let rows = cfgWeight(config) > 0 ? 2 : 1
        let kvBytes = (1...max(steps, 1)).map { i in 2 * config.layers * rows * (f32.prefillLength + i) * config.heads * config.headDim * 4 }
            .reduce(0, +) / max(steps, 1)
        for (name, run, bytesPerParameter) in [("f32", f32, 4), ("bf16", bf16, 2)] {
            let bytes = parameters * bytesPerParameter
            let rooflineMs = Double(bytes) / (readGBs * 1e9) * 1e3
            let decodeMs = median(run.stepMs)
            var entry: [String: Any] = [
                "model_build_ms": rounded(run.loadMs, 1),
                "prefill_length": run.prefillLength,
                "prefill_ms": run.prefillMs.map { rounded($0, 1) },
                "prefill_ms_median": rounded(median(run.prefillMs), 1),
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
            ? "T3 Turbo (GPT-2 medium, one row, no guidance); prefill = conditioning (speaker + \(promptTokens(config)) prompt speech "
                + "embeddings) + T3Decoder init over cond|text(\(textTokens))|bos (\(f32.prefillLength) positions); "
            : "T3 original English, CFG weight \(cfgWeight(config)) (2 rows), exaggeration \(exaggeration); prefill = conditioning "
                + "(speaker + perceiver over \(promptTokens(config)) prompt speech tokens) + T3Decoder init over cond|text(\(textTokens)+2)|bos|bos; "
        return [
            "family": ModelVariant.published(matching: config)?.name ?? (turbo ? "chatterbox-turbo" : "chatterbox"),
            "method": model
                + "warm prefill = T3Decoder init from a T3PrefixState of the same conditioning built once beforehand (a repeated voice; "
                + "conditioning positions copied, backbone over the rest), median of \(prefillRepetitions); "
                + "decode = \(steps) teacher-forced steps (fixed random speech tokens, no sampling chain), median ms/token; "
                + "roofline = decode weight bytes per token ÷ read bandwidth (the higher of the probes before and after our runs, "
                + "median of 9 each, best thread count)",
            "weights_f32": weights,
            "weights_bf16": bf16Source,
            "decode_parameters_per_token": parameters,
            "read_bandwidth_gb_s": readGBs,
            "membw_before": bandwidthBefore.document,
            "membw_after": bandwidthAfter.document,
            "bf16_vs_f32_cfg_logits_relative_error": rounded(bf16Error, 6),
            "bf16_vs_f32_cfg_logit_rows": bf16.logits.count,
            "precisions": precisions,
            "upstream": upstreamSummary,
        ]
    }

    /// Spawns the reference Python on the same weights and inputs; on any failure, says why.
    func runUpstream(inputs: Inputs, config: T3Config) -> [String: Any] {
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
            "weights": weightsFile, "threads": threads, "dtypes": ["f32", "bf16"],
            "speaker_embedding": inputs.speaker, "prompt_tokens": inputs.prompt, "text_tokens": inputs.text,
            "forced_tokens": inputs.forced, "cfg_weight": cfgWeight(config), "exaggeration": exaggeration,
            "family": config.procedure is T3TurboProcedure ? "turbo" : "original",
            "prefill_repetitions": prefillRepetitions, "logit_rows": logitRows,
        ]
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
