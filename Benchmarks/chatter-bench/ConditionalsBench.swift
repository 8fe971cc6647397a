import ChatterAudio
import ChatterModels
import ChatterTensor
import Foundation

/// Time to build a voice's conditionals from a 10 s reference file (decode + resample, Turbo's
/// loudness, prompt mel, CAMPPlus, S3Tokenizer twice, VoiceEncoder) on full-size weights, for the
/// original and Turbo recipes, with upstream `prepare_conditionals` timed on the same weights and
/// file in the same run (tools/bench/conditionals_upstream.py in the reference venv).
///
/// The reference is real speech: the two utterances of the committed `s3tokenizer/tokenizer` fixture
/// (from the s3tokenizer wheel) tiled to 10 s, written as a 16 kHz float WAV (both sides resample it
/// to 24 kHz on load, as librosa.load does).
struct ConditionalsBench {
    let model: String
    let repetitions: Int
    let threads: Int
    let python: String?
    let script: String
    let fixture = "Tests/Fixtures/s3tokenizer/tokenizer.safetensors"

    func weights() throws -> (ve: SafetensorsFile, s3gen: SafetensorsFile) {
        let ve = (model as NSString).appendingPathComponent("ve.safetensors")
        for name in ["s3gen.safetensors", "s3gen_meanflow.safetensors"] {
            let path = (model as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: path) { return (try SafetensorsFile(path: ve), try SafetensorsFile(path: path)) }
        }
        throw TensorError.invalidArgument("\(model) holds neither s3gen.safetensors nor s3gen_meanflow.safetensors")
    }

    func writeReference(to path: String) throws -> Double {
        let clips = try SafetensorsFile(path: fixture)
        let speech = try clips.tensor("speech.wav").scalars() + clips.tensor("maxlen.wav").scalars()
        let samples = 10 * 16_000
        let tiled = (0..<samples).map { speech[$0 % speech.count] }
        try WAVFile.write(tiled, sampleRate: 16_000, to: path, format: .float32)
        return Double(samples) / 16_000
    }

    /// Where the original recipe's time goes: each step timed alone (median of `repetitions`).
    func breakdown(_ builder: ConditionalsBuilder, reference: String) throws -> [String: Double] {
        func time(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<max(1, repetitions) {
                let start = now()
                try body()
                times.append(Double(now() - start) / 1e9)
            }
            return median(times)
        }
        let wav24 = try AudioFile.load(path: reference, sampleRate: 24_000).samples
        let wav16 = try resample(wav24, from: 24_000, to: 16_000)
        let sinc16 = SincResampler.resample(wav24, from: 24_000, to: 16_000)
        let fbank = KaldiFbank.compute(sinc16)
        return [
            "load_24k": try time { _ = try AudioFile.load(path: reference, sampleRate: 24_000) },
            "loudness": try time { _ = try Loudness.integrated(wav24, sampleRate: 24_000) },
            "soxr_24k_16k": try time { _ = try resample(wav24, from: 24_000, to: 16_000) },
            "prompt_mel": try time { _ = try S3GenMel.compute(wav24) },
            "sinc_24k_16k": time { _ = SincResampler.resample(wav24, from: 24_000, to: 16_000) },
            "fbank": time { _ = KaldiFbank.compute(sinc16) },
            "campplus": try time { _ = try builder.speakerEncoder.embed(fbank: fbank) },
            "tokenizer_10s": try time { _ = try builder.tokenizer.tokenize(sinc16) },
            "tokenizer_6s": try time { _ = try builder.tokenizer.tokenize(Array(wav16.prefix(96_000)), maxLength: 150) },
            "voice_encoder": try time { _ = try builder.voiceEncoder.embed(wav16) },
        ]
    }

    func run() throws -> [String: Any] {
        let reference = FileManager.default.temporaryDirectory.appendingPathComponent("conditionals-bench-\(getpid()).wav").path
        defer { try? FileManager.default.removeItem(atPath: reference) }
        let seconds = try writeReference(to: reference)
        let loadStart = now()
        let (ve, s3gen) = try weights()
        let builder = try ConditionalsBuilder(ve: ve, s3gen: s3gen)
        let loadSeconds = Double(now() - loadStart) / 1e9
        note("conditionals: networks loaded from \(model) in \(rounded(loadSeconds, 3)) s; reference \(seconds) s")
        var ours: [String: Double] = [:]
        var shapes: [String: [String: Int]] = [:]
        for variant in [ModelVariant.chatterbox, .chatterboxTurbo] {
            let family = variant.name
            var times: [Double] = []
            var conds: Conditionals?
            for _ in 0...repetitions {  // the first call warms up
                let start = now()
                conds = try builder.build(referenceURL: URL(fileURLWithPath: reference), for: variant)
                times.append(Double(now() - start) / 1e9)
            }
            ours[family] = median(Array(times.dropFirst()))
            shapes[family] = ["prompt_tokens": conds?.gen.promptTokens.count ?? 0,
                              "t3_prompt_tokens": conds?.t3.condPromptSpeechTokens?.count ?? 0]
            note("conditionals ours \(family): \(rounded(ours[family]!, 3)) s")
        }
        let parts = try breakdown(builder, reference: reference)
        note("conditionals ours, original recipe by part: " + parts.sorted { $0.key < $1.key }.map { "\($0.key) \(rounded($0.value, 3)) s" }.joined(separator: ", "))
        var result: [String: Any] = [
            "ours_parts_s": parts.mapValues { rounded($0, 4) },
            "model": model, "reference_seconds": seconds, "reference": "s3tokenizer wheel speech tiled to 10 s, 16 kHz float WAV",
            "repetitions": repetitions, "method": "median of \(repetitions) after one warm-up call, file to Conditionals",
            "shapes": shapes,
            "ours": ["load_s": rounded(loadSeconds, 3), "seconds": ours.mapValues { rounded($0, 4) }] as [String: Any],
        ]
        if let python {
            let arguments = [script, "--model", model, "--reference", reference, "--threads", "\(threads)",
                             "--repetitions", "\(repetitions)"]
            note("conditionals: running upstream PyTorch: \(python) \(arguments.joined(separator: " "))")
            let upstream = try runReferencePython(python, arguments: arguments, threads: threads)
            result["pytorch"] = upstream
            let theirs = (upstream["seconds"] as? [String: Double]) ?? [:]
            result["ratio_ours_over_pytorch"] = ours.reduce(into: [String: Double]()) { out, item in
                if let t = theirs[item.key], t > 0 { out[item.key] = rounded(item.value / t, 3) }
            }
        }
        return result
    }
}
