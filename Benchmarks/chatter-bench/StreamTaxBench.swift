import ChatterModels
import ChatterTensor
import Foundation

/// The streaming tax, counted: S3Gen's work (`S3GenWork`: encoder frames, CFM estimator frames ×
/// steps, vocoded mel frames) for a streamed utterance over one call's for the same random tokens,
/// noise and draws, beside the streamed audio's SNR against that call; per checkpoint (one per
/// seed) and per chunk schedule and left context. Also the meanflow step count's cost: the one-shot
/// mel and wave of 1 step against 2. Times are printed but are not the measure.
struct StreamTaxBench {
    /// Directories with `s3gen_meanflow.safetensors` / `s3gen.safetensors` and `conds.pt` (upstream
    /// layout) or `conds.safetensors` (converted).
    let models: [String]
    let tokens: Int
    /// Chunk schedules, each a list of sizes whose last repeats ("25,75": 25, then 75 at a time).
    let schedules: [[Int]]
    /// Left contexts in tokens (nil: all).
    let contexts: [Int?]
    /// Prompt tokens the first push decodes (nil: all; later pushes decode the whole prompt).
    let prompts: [Int?]
    /// S3Gen's arithmetic (f32: the reference path; bf16: what `auto` picks on avx512_bf16).
    var precision: S3GenPrecision = .f32

    static func load(_ directory: String, precision: S3GenPrecision = .f32) throws -> (S3Gen, FlowReference) {
        let fm = FileManager.default
        let weights = ["s3gen_meanflow.safetensors", "s3gen.safetensors"].map { directory + "/" + $0 }.first { fm.fileExists(atPath: $0) }
        guard let weights else { throw StreamTaxError(message: "\(directory) has no s3gen_meanflow.safetensors or s3gen.safetensors") }
        let s3gen = try S3Gen(weights: try SafetensorsFile(path: weights), precision: precision)
        let reference: FlowReference
        if fm.fileExists(atPath: directory + "/conds.safetensors") {
            reference = try S3Gen.reference(from: try SafetensorsFile(path: directory + "/conds.safetensors"))
        } else {
            reference = try S3Gen.reference(checkpoint: try TorchCheckpoint(path: directory + "/conds.pt"))
        }
        return (s3gen, reference)
    }

    static func snr(_ signal: [Float], _ estimate: [Float]) -> Double {
        var s = 0.0, e = 0.0
        for (a, b) in zip(signal, estimate) { s += Double(a) * Double(a); e += Double(a - b) * Double(a - b) }
        return 10 * log10(s / max(e, 1e-30))
    }

    /// Sizes of the chunks `schedule` cuts `total` tokens into.
    static func chunks(_ total: Int, schedule: [Int]) -> [Int] {
        var sizes: [Int] = [], done = 0
        while done < total {
            let size = min(total - done, schedule[min(sizes.count, schedule.count - 1)])
            sizes.append(size)
            done += size
        }
        return sizes
    }

    func run() throws -> [String: Any] {
        var results: [[String: Any]] = []
        for directory in models {
            let (s3gen, reference) = try Self.load(directory, precision: precision)
            var rng = SplitMix64(seed: 99)
            let tokens = (0..<tokens).map { _ in Int(rng.next() % UInt64(s3gen.flow.vocabulary)) }
            var start = now()
            let (oneShot, oneShotWork) = try S3GenStream.renderCounted(s3gen: s3gen, tokens: tokens, reference: reference,
                                                                       noiseSeed: 5, drawSeed: 6)
            let oneShotSeconds = Double(now() - start) / 1e9
            // Why seeds differ: the vocoder's excitation. Voiced frames (f0 above the threshold) carry
            // sines whose phase integrates f0, so a small mel difference becomes a growing phase error.
            let oneShotMel = try s3gen.flow.inference(tokens: tokens, reference: reference, seed: 5)
            let f0 = s3gen.vocoder.f0Predictor(oneShotMel.reshaped([1, 80, oneShotMel.shape[1]]))
            let voiced = Double(f0.filter { $0 > s3gen.vocoder.config.voicedThreshold }.count) / Double(max(f0.count, 1))
            let meanF0 = f0.reduce(0.0) { $0 + Double($1) } / Double(max(f0.count, 1))
            note("stream-tax: \(directory): F0 predictor over the one-shot mel: mean \(rounded(meanF0, 1)) Hz, voiced frames \(rounded(100 * voiced, 1)) %")
            note("stream-tax: \(directory): \(reference.promptTokens.count) prompt tokens, \(tokens.count) tokens; one call: \(oneShot.count) samples in \(rounded(oneShotSeconds, 2)) s, work \(oneShotWork)")
            var runs: [[String: Any]] = []
            for schedule in schedules {
                for context in contexts { for prompt in prompts {
                    var stream = S3GenStream(s3gen: s3gen, reference: reference, noiseSeed: 5, drawSeed: 6, maxContextTokens: context,
                                             maxPromptTokens: prompt)
                    var flowOnly = FlowStream(flow: s3gen.flow, reference: reference, seed: 5, maxContextTokens: context,
                                              maxPromptTokens: prompt)
                    var mel: [Tensor] = []
                    var streamed: [Float] = [], offset = 0
                    let sizes = Self.chunks(tokens.count, schedule: schedule)
                    start = now()
                    var chunkSNR: [Double] = []
                    for size in sizes {
                        let chunk = Array(tokens[offset..<(offset + size)]), last = offset + size == tokens.count
                        mel.append(try flowOnly.push(chunk, final: last))
                        let piece = try stream.push(chunk, final: last)
                        if !piece.isEmpty {
                            chunkSNR.append(rounded(Self.snr(Array(oneShot[streamed.count..<(streamed.count + piece.count)]), piece), 1))
                        }
                        streamed += piece
                        offset += size
                    }
                    let seconds = Double(now() - start) / 1e9
                    let snr = Self.snr(oneShot, streamed)
                    let melSNR = Self.snr(oneShotMel.scalars(), concatenate(mel, axis: 1).scalars())
                    let ratio = stream.work.ratio(to: oneShotWork)
                    note("stream-tax:   chunks \(sizes) context \(context.map(String.init) ?? "all") prompt \(prompt.map(String.init) ?? "all"): \(streamed.count) samples, mel SNR \(rounded(melSNR, 2)) dB, wave SNR \(rounded(snr, 2)) dB (per emission \(chunkSNR)), work ratio estimator \(rounded(ratio.estimator, 3)) encoder \(rounded(ratio.encoder, 3)) vocoder \(rounded(ratio.vocoder, 3)), \(stream.work.flow.calls) calls, \(rounded(seconds, 2)) s")
                    runs.append(["chunks": sizes, "context_tokens": context.map { $0 as Any } ?? "all",
                                 "prompt_tokens": prompt.map { $0 as Any } ?? "all",
                                 "samples": streamed.count, "same_length": streamed.count == oneShot.count,
                                 "snr_db": rounded(snr, 2), "mel_snr_db": rounded(melSNR, 2), "emission_snr_db": chunkSNR,
                                 "work_ratio": ["estimator": rounded(ratio.estimator, 4), "encoder": rounded(ratio.encoder, 4),
                                                "vocoder": rounded(ratio.vocoder, 4)],
                                 "flow_calls": stream.work.flow.calls, "seconds": rounded(seconds)])
                } }
            }
            // One meanflow step against upstream's two, one call each, same noise and draws.
            var steps: [String: Any] = [:]
            if s3gen.isMeanflow {
                let two = try s3gen.inference(tokens: tokens, reference: reference, steps: 2, noiseSeed: 5, drawSeed: 6)
                let one = try s3gen.inference(tokens: tokens, reference: reference, steps: 1, noiseSeed: 5, drawSeed: 6)
                let (m2, m1) = (two.mel.scalars(), one.mel.scalars())
                let melRelative = sqrt(zip(m2, m1).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / m2.reduce(0.0) { $0 + Double($1 * $1) })
                let maxMel = zip(m2, m1).map { abs($0 - $1) }.max() ?? 0
                let waveSNR = Self.snr(two.wave.scalars(), one.wave.scalars())
                note("stream-tax:   1 meanflow step vs 2 (one call): mel relative error \(rounded(melRelative, 4)) (max |Δ| \(rounded(Double(maxMel), 3)) nats), wave SNR \(rounded(waveSNR, 2)) dB")
                steps = ["mel_relative_error": rounded(melRelative, 5), "mel_max_abs": rounded(Double(maxMel), 4), "wave_snr_db": rounded(waveSNR, 2)]
            }
            results.append(["model": directory, "s3gen_precision": precision.resolved.rawValue, "prompt_tokens": reference.promptTokens.count, "tokens": tokens.count,
                            "f0_mean_hz": rounded(meanF0, 2), "voiced_fraction": rounded(voiced, 4),
                            "one_shot_samples": oneShot.count, "one_shot_s": rounded(oneShotSeconds),
                            "one_shot_work": ["encoder_frames": oneShotWork.flow.encoderFrames,
                                              "estimator_frame_steps": oneShotWork.flow.estimatorFrameSteps,
                                              "vocoder_frames": oneShotWork.vocoderFrames],
                            "streamed": runs, "one_vs_two_steps": steps])
        }
        return ["models": results]
    }
}

struct StreamTaxError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
