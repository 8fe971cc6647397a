import ChatterModels
import ChatterTensor
import Foundation

/// S3Gen's three parts (encoder, CFM, HiFT) on full-size weights, per second of output audio, with
/// upstream PyTorch timed on the same weights and inputs in the same run (a child process running
/// tools/bench/s3gen_upstream.py in the reference venv). Each precision in `precisions` (f32 first,
/// the reference) is timed, repetitions interleaved so that a change in the machine's load falls on
/// all of them; the others report their mel and wave error against the f32 run's (same inputs, noise
/// and draws).
struct S3GenBench {
    let model: String
    let precisions: [S3GenPrecision]
    let repetitions: Int
    let threads: Int
    let promptTokens: Int
    let newTokens: Int
    let python: String?
    let script: String
    let gemmPeak: Double

    /// The weights file: `model` itself, or s3gen.safetensors / s3gen_meanflow.safetensors inside it.
    func weightsPath() throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else {
            throw TensorError.invalidArgument("no S3Gen weights at \(model)")
        }
        if !isDirectory.boolValue { return model }
        for name in ["s3gen.safetensors", "s3gen_meanflow.safetensors"] {
            let path = (model as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw TensorError.invalidArgument("\(model) holds neither s3gen.safetensors nor s3gen_meanflow.safetensors")
    }

    /// Multiply-add FLOPs (2 per MAC) of one estimator call over `rows` × `frames`: every conv / linear
    /// weight applied at every frame (the time MLPs run once per call and are left out), plus
    /// attention's QKᵀ and AV per transformer block.
    static func estimatorFLOPs(_ file: SafetensorsFile, rows: Int, frames: Int) -> Double {
        let prefix = "flow.decoder.estimator."
        var perFrame = 0.0, attentionInner = 0.0
        for entry in file.entries where entry.name.hasPrefix(prefix) && entry.name.hasSuffix(".weight") && entry.shape.count >= 2 {
            let name = entry.name
            if name.contains("time_mlp") || name.contains(".mlp.") || name.contains("time_embed_mixer") { continue }
            perFrame += Double(entry.shape.reduce(1, *))
            if name.hasSuffix("attn1.to_q.weight") { attentionInner += Double(entry.shape[0]) }
        }
        let n = Double(frames)
        return Double(rows) * (2 * n * perFrame + 2 * 2 * n * n * attentionInner)
    }

    func run() throws -> [String: Any] {
        let path = try weightsPath()
        let loadStart = now()
        let file = try SafetensorsFile(path: path)
        precondition(precisions.first == .f32, "f32 is the reference and comes first")
        var models: [S3Gen] = [], loadTimes: [Double] = []
        for precision in precisions {
            let start = now()
            models.append(try S3Gen(weights: file, precision: precision))
            loadTimes.append(Double(now() - start) / 1e9)
        }
        let s3gen = models[0], loadSeconds = Double(now() - loadStart) / 1e9
        let meanflow = s3gen.isMeanflow, steps = s3gen.flow.defaultSteps
        note("s3gen: \(meanflow ? "meanflow" : "standard") weights \(path), \(precisions.map(\.rawValue).joined(separator: ", ")) loaded in \(loadTimes.map { rounded($0, 2) }) s")

        // Inputs: a 10 s prompt (P tokens, 2P mel frames) and T new tokens, seeded; shared with PyTorch.
        var rng = SplitMix64(seed: 2024)
        let vocabulary = s3gen.flow.vocabulary
        let prompt = (0..<promptTokens).map { _ in Int.random(in: 0..<vocabulary, using: &rng) }
        let tokens = (0..<newTokens).map { _ in Int.random(in: 0..<vocabulary, using: &rng) }
        let promptMel = Tensor(shape: [2 * promptTokens, 80],
                               scalars: (0..<(2 * promptTokens * 80)).map { _ in Float.random(in: -9 ..< -1, using: &rng) })
        let embedding = Tensor(shape: [192], scalars: (0..<192).map { _ in Float.random(in: -1..<1, using: &rng) })
        let frames = 2 * (promptTokens + newTokens)
        let noise = FlowNoise(seed: 7).frames(0..<frames)
        let reference = try FlowReference(promptTokens: prompt, promptMel: promptMel, embedding: embedding)

        // Warm-up: the encoder and HiFT in full, the CFM at one step.
        for model in models {
            let (mu, spks, cond, _) = try model.flow.conditioning(tokens: tokens, reference: reference)
            _ = model.flow.cfm.solve(noise: noise, mu: mu, spks: spks, cond: cond, steps: 1)
            _ = try model.vocode(mel: Tensor(zeros: [80, 2 * newTokens]), drawSeed: 1)
        }
        var times = Array(repeating: (encoder: [Double](), cfm: [Double](), hift: [Double]()), count: models.count)
        var waves = Array(repeating: Tensor(zeros: [1, 0]), count: models.count), mels = Array(repeating: Tensor(zeros: [80, 0]), count: models.count)
        for _ in 0..<repetitions {
            for (i, model) in models.enumerated() {
                var start = now()
                let (mu, spks, cond, f) = try model.flow.conditioning(tokens: tokens, reference: reference)
                times[i].encoder.append(Double(now() - start) / 1e9)
                start = now()
                mels[i] = model.flow.cfm.solve(noise: noise, mu: mu, spks: spks, cond: cond, steps: steps).slice(1, f..<frames).contiguous()
                times[i].cfm.append(Double(now() - start) / 1e9)
                start = now()
                waves[i] = try model.vocode(mel: mels[i], drawSeed: 1).wave
                times[i].hift.append(Double(now() - start) / 1e9)
            }
        }
        let (wave, mel) = (waves[0], mels[0])
        let audioSeconds = Double(wave.count) / Double(s3gen.sampleRate)
        let rows = meanflow ? 1 : 2
        let cfmFLOPs = Double(steps) * Self.estimatorFLOPs(file, rows: rows, frames: frames)
        let medians = times.map { ["encoder": median($0.encoder), "cfm": median($0.cfm), "hift": median($0.hift)] }
        let ours = medians[0]
        let melMean = Double(mel.scalars().reduce(0, +)) / Double(mel.count)
        let waveRMS = (wave.scalars().reduce(0.0) { $0 + Double($1) * Double($1) } / Double(wave.count)).squareRoot()
        for part in ["encoder", "cfm", "hift"] {
            note("s3gen ours \(part): \(rounded(ours[part]!, 3)) s = \(rounded(ours[part]! / audioSeconds, 3)) s per s of audio")
        }
        let oursGFLOPs = cfmFLOPs / ours["cfm"]! / 1e9
        note("s3gen ours estimator: \(rounded(cfmFLOPs / 1e9, 1)) GFLOP in \(steps) steps = \(rounded(oursGFLOPs, 1)) GFLOP/s (GEMM peak \(rounded(gemmPeak, 1)))")

        var result: [String: Any] = [
            "weights": path, "meanflow": meanflow, "steps": steps, "cfg_rows": rows,
            "prompt_tokens": promptTokens, "prompt_mel_frames": 2 * promptTokens, "new_tokens": newTokens,
            "decoder_frames": frames, "audio_seconds": audioSeconds, "repetitions": repetitions,
            "method": "median of \(repetitions) after a warm-up (encoder, HiFT in full; CFM 1 step); encoder = x-vector affine + embedding + conformer + encoder_proj + cond; cfm = \(steps) Euler steps\(meanflow ? "" : " with CFG (batch 2)"); hift = F0 + source + decode + trim_fade",
            "estimator_gflop": rounded(cfmFLOPs / 1e9, 2),
            "gemm_peak_gflop_s": rounded(gemmPeak, 1),
            "ours": [
                "load_s": rounded(loadSeconds, 3),
                "seconds": ours.mapValues { rounded($0, 4) },
                "seconds_per_audio_second": ours.mapValues { rounded($0 / audioSeconds, 4) },
                "estimator_gflop_s": rounded(oursGFLOPs, 1),
                "mel_mean": rounded(melMean, 4), "wave_rms": rounded(waveRMS, 4),
            ] as [String: Any],
            "isa": "\(KernelISA.current)",
        ]
        // The other precisions against f32: speed-up per part, mel and wave error (same noise and draws).
        var others: [String: Any] = [:]
        for i in models.indices.dropFirst() {
            let name = precisions[i].rawValue, resolved = models[i].precision.rawValue
            let melError = S3GenBench.error(mels[i], against: mel), waveError = S3GenBench.error(waves[i], against: wave)
            let total = medians[i].values.reduce(0, +), reference = ours.values.reduce(0, +)
            note("s3gen ours \(name) (\(resolved)): encoder \(rounded(medians[i]["encoder"]!, 3)) s, cfm \(rounded(medians[i]["cfm"]!, 3)) s, hift \(rounded(medians[i]["hift"]!, 3)) s: \(rounded(reference / total, 2))× f32; mel relative error \(melError["max_relative"]!) (rms \(melError["rms_relative"]!)), wave SNR \(waveError["snr_db"]!) dB")
            others[name] = [
                "resolved": resolved, "load_s": rounded(loadTimes[i], 3),
                "seconds": medians[i].mapValues { rounded($0, 4) },
                "seconds_per_audio_second": medians[i].mapValues { rounded($0 / audioSeconds, 4) },
                "speedup_over_f32": medians[i].reduce(into: [String: Double]()) { $0[$1.key] = rounded(ours[$1.key]! / $1.value, 3) },
                "total_speedup_over_f32": rounded(reference / total, 3),
                "estimator_gflop_s": rounded(cfmFLOPs / medians[i]["cfm"]! / 1e9, 1),
                "mel_vs_f32": melError, "wave_vs_f32": waveError,
            ] as [String: Any]
        }
        if !others.isEmpty { result["precisions"] = others }
        if let python {
            let inputs = FileManager.default.temporaryDirectory.appendingPathComponent("s3gen-bench-\(getpid()).safetensors").path
            defer { try? FileManager.default.removeItem(atPath: inputs) }
            try SafetensorsWriter.write([
                ("prompt_token", Tensor(shape: [1, promptTokens], scalars: prompt.map(Float.init))),
                ("prompt_feat", promptMel.reshaped([1, 2 * promptTokens, 80])),
                ("embedding", embedding.reshaped([1, 192])),
                ("token", Tensor(shape: [1, newTokens], scalars: tokens.map(Float.init))),
                ("noise", noise.reshaped([1, 80, frames])),
            ], to: inputs)
            var arguments = [script, "--weights", path, "--inputs", inputs, "--threads", "\(threads)",
                             "--repetitions", "\(repetitions)"]
            if meanflow { arguments.append("--meanflow") }
            note("s3gen: running upstream PyTorch: \(python) \(arguments.joined(separator: " "))")
            let upstream = try runReferencePython(python, arguments: arguments, threads: threads)
            let seconds = (upstream["seconds"] as? [String: Double]) ?? [:]
            var theirs = upstream
            theirs["seconds_per_audio_second"] = seconds.mapValues { rounded($0 / audioSeconds, 4) }
            if let cfm = seconds["cfm"] { theirs["estimator_gflop_s"] = rounded(cfmFLOPs / cfm / 1e9, 1) }
            result["pytorch"] = theirs
            result["ratio_ours_over_pytorch"] = ours.reduce(into: [String: Double]()) { out, item in
                if let t = seconds[item.key], t > 0 { out[item.key] = rounded(item.value / t, 3) }
            }
            for i in models.indices.dropFirst() {
                let pytorchTotal = ["encoder", "cfm", "hift"].compactMap { seconds[$0] }.reduce(0, +)
                if pytorchTotal > 0, var entry = others[precisions[i].rawValue] as? [String: Any] {
                    entry["pytorch_f32_over_ours"] = rounded(pytorchTotal / medians[i].values.reduce(0, +), 3)
                    others[precisions[i].rawValue] = entry
                    note("s3gen: PyTorch f32 / ours \(precisions[i].rawValue), whole S3Gen: \(entry["pytorch_f32_over_ours"]!)×")
                }
            }
            if !others.isEmpty { result["precisions"] = others }
            for part in ["encoder", "cfm", "hift"] {
                if let t = seconds[part] {
                    note("s3gen pytorch \(part): \(rounded(t, 3)) s = \(rounded(t / audioSeconds, 3)) s per s of audio; ours/pytorch \(rounded(ours[part]! / t, 2))")
                }
            }
        }
        return result
    }

    /// `actual` against `reference`: max |Δ| over max |ref| (the parity tests' relative error), the
    /// RMS ratio ‖Δ‖ / ‖ref‖, and the SNR in dB.
    static func error(_ actual: Tensor, against reference: Tensor) -> [String: Double] {
        let a = actual.scalars(), r = reference.scalars()
        precondition(a.count == r.count, "error: \(a.count) against \(r.count) values")
        var maxError = 0.0, maxReference = 0.0, signal = 0.0, noise = 0.0
        for (x, y) in zip(a, r) {
            let d = Double(x) - Double(y)
            maxError = max(maxError, abs(d))
            maxReference = max(maxReference, abs(Double(y)))
            signal += Double(y) * Double(y)
            noise += d * d
        }
        return ["max_abs": rounded(maxError, 6), "max_relative": rounded(maxError / max(maxReference, 1e-30), 6),
                "rms_relative": rounded((noise / max(signal, 1e-30)).squareRoot(), 6),
                "snr_db": rounded(10 * log10(max(signal, 1e-30) / max(noise, 1e-30)), 2)]
    }
}
