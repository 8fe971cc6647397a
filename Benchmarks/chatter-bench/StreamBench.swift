import ChatterModels
import ChatterTensor
import Chatterstream
import Foundation

/// End-to-end streaming on a converted full-size model: time to the first chunk with audio and the
/// real-time factor for each first-chunk size, the same for a warm voice (its T3 conditioning prefix
/// cached by an earlier utterance, or read from the file an earlier process left beside the model),
/// the watermark's share of the time, and upstream's
/// one-shot `generate` timed in the same run (tools/bench/tts_upstream.py; upstream does not stream,
/// so its first audio is its whole utterance).
struct StreamBench {
    let model: URL
    let upstreamCheckpoint: String?
    let python: String?
    let threads: Int
    let text: String
    /// The text's language (`SynthesisOptions.language`), for the multilingual models.
    let language: String?
    let maxTokens: Int
    let firstChunkSizes: [Int]
    let seed: UInt64
    /// S3Gen's arithmetic in every timed engine (`auto`: bf16 on avx512_bf16, the engine's default).
    var s3genPrecision: S3GenPrecision = .auto
    /// The timed engines' chunk strategy and first-push prompt bound (defaults: the engine's).
    var strategy = SynthesisOptions().strategy
    var flowPromptTokens = SynthesisOptions().flowPromptTokens
    /// The Perth checkpoint the watermark's share is measured with (the engine's, by default).
    var perthCheckpoint: String?

    struct Run {
        var firstChunk: Double
        var total: Double
        var audio: Double
        var chunks: Int
        var samples: [Int16]
        /// What a listener who starts playing the first audio at once would wait in all after it
        /// (chunks arriving after the audio before them has been played), and when they would have
        /// heard the end, from the call.
        var stall: Double
        var listenerDone: Double
        /// Samples per chunk, as emitted.
        var chunkSamples: [Int]
    }

    /// How the built-in voice's T3 conditioning prefix is found by the timed run.
    enum VoiceStart {
        /// Computed in the run: the engine's file of it (`StreamingTTS.builtinVoicePrefixFileName`) is
        /// removed first, as in a process that has never used this model.
        case cold
        /// A fresh engine reading the file an earlier run wrote (a later process).
        case fromDisk
        /// Cached in memory by an untimed one-token utterance on the same engine (a repeated voice).
        case inMemory
    }

    func synthesize(firstChunk: Int, watermark: Bool, voice start: VoiceStart = .cold) async throws -> Run {
        var config = SynthesisOptions()
        config.firstChunkTokens = firstChunk
        config.strategy = strategy
        config.flowPromptTokens = flowPromptTokens
        config.maxTokens = maxTokens
        config.seed = seed
        config.language = language
        let prefixFile = model.appendingPathComponent(StreamingTTS.builtinVoicePrefixFileName)
        if start != .fromDisk { try? FileManager.default.removeItem(at: prefixFile) }
        let tts = try await StreamingTTS(model: .directory(model), options: config, watermark: watermark,
                                           s3genPrecision: s3genPrecision).load()
        if start == .inMemory {
            var short = config
            short.maxTokens = 1
            for try await _ in tts.synthesize("Warm up.", options: short) {}
        }
        let start = now()
        var first: UInt64?
        var chunks = 0
        var samples: [Int16] = []
        var playbackEnd: Double?, stall = 0.0, chunkSamples: [Int] = []
        for try await chunk in tts.synthesize(text) {
            chunkSamples.append(chunk.sampleCount)
            let arrival = Double(now() - start) / 1e9
            if first == nil && chunk.sampleCount > 0 { first = now() }
            if chunk.sampleCount > 0 {
                if let end = playbackEnd, arrival > end { stall += arrival - end }
                playbackEnd = max(playbackEnd ?? arrival, arrival) + Double(chunk.sampleCount) / 24_000
            }
            chunks += 1
            samples += chunk.samples
        }
        let end = now()
        return Run(firstChunk: Double((first ?? end) - start) / 1e9, total: Double(end - start) / 1e9,
                   audio: Double(samples.count) / 24_000, chunks: chunks, samples: samples,
                   stall: stall, listenerDone: playbackEnd ?? Double(end - start) / 1e9, chunkSamples: chunkSamples)
    }

    /// The watermark's own time in `run`: its audio pushed through a fresh `WatermarkStream` in the
    /// run's chunks, as the engine does, timed `repetitions` times in this process (median). Comparing
    /// one run with and one without the watermark cannot resolve a few percent on a machine whose
    /// speed drifts between runs; timing the watermark's work itself can.
    func watermarkSeconds(of run: Run, checkpoint: String, repetitions: Int = 5) throws -> Double {
        let perth = try PerthWatermarker(checkpointPath: checkpoint)
        let audio = run.samples.map { Float($0) / 32767 }
        var times: [Double] = []
        for _ in 0...repetitions {  // the first is a warm-up
            var stream = WatermarkStream(watermarker: perth, sampleRate: 24_000)
            var offset = 0
            let start = now()
            for (index, count) in run.chunkSamples.enumerated() {
                _ = try stream.push(Array(audio[offset..<(offset + count)]), final: index == run.chunkSamples.count - 1)
                offset += count
            }
            times.append(Double(now() - start) / 1e9)
        }
        return median(Array(times.dropFirst()))
    }

    /// Streamed vs one-shot S3Gen on the same speech tokens, noise and draws: the seam cost in dB.
    /// Chunks as the engine makes them with `strategy` (fixed: first, then 75; paced: first, then
    /// the rest, what a machine behind playback does), the first push's prompt bound and the context
    /// as configured.
    func streamedVersusOneShot(firstChunk: Int) throws -> [String: Any] {
        let converted = try ConvertedModel(directory: model)
        let shapes = converted.manifest.hyperparameters
        let s3gen = try S3Gen(weights: try converted.file(ConvertedFiles.s3gen), decoderHeads: shapes?.s3genDecoderHeads ?? 8,
                              vocoder: shapes?.hift ?? .chatterbox, precision: s3genPrecision)
        let reference = try S3Gen.reference(from: try converted.file(ConvertedFiles.builtinVoice))
        var rng = SplitMix64(seed: 99)
        let tokens = (0..<maxTokens).map { _ in Int(rng.next() % 6561) }
        let start = now()
        let (oneShot, oneShotWork) = try S3GenStream.renderCounted(s3gen: s3gen, tokens: tokens, reference: reference, noiseSeed: 5, drawSeed: 6)
        let oneShotSeconds = Double(now() - start) / 1e9
        var stream = S3GenStream(s3gen: s3gen, reference: reference, noiseSeed: 5, drawSeed: 6,
                                 maxContextTokens: SynthesisOptions().flowContextTokens,
                                 maxPromptTokens: flowPromptTokens == 0 ? nil : flowPromptTokens)
        var streamed: [Float] = [], offset = 0, size = firstChunk, sizes: [Int] = []
        let later = strategy == .paced ? tokens.count : SynthesisOptions().chunkTokens
        let streamStart = now()
        while offset < tokens.count {
            let end = min(tokens.count, offset + size)
            streamed += try stream.push(Array(tokens[offset..<end]), final: end == tokens.count)
            sizes.append(end - offset)
            offset = end
            size = later
        }
        let streamSeconds = Double(now() - streamStart) / 1e9
        var signal = 0.0, error = 0.0
        for (a, b) in zip(oneShot, streamed) { signal += Double(a * a); error += Double((a - b) * (a - b)) }
        let snr = 10 * log10(signal / max(error, 1e-30))
        note("stream: S3Gen streamed (chunks \(sizes)) vs one-shot over \(tokens.count) random tokens: \(streamed.count) vs \(oneShot.count) samples, SNR \(rounded(snr, 1)) dB (one-shot \(rounded(oneShotSeconds, 1)) s, streamed \(rounded(streamSeconds, 1)) s, estimator work \(rounded(stream.work.ratio(to: oneShotWork).estimator, 3))× one call's)")
        return ["tokens": tokens.count, "chunks": sizes, "samples_streamed": streamed.count, "samples_one_shot": oneShot.count,
                "snr_db": rounded(snr, 2), "estimator_work_ratio": rounded(stream.work.ratio(to: oneShotWork).estimator, 3), "one_shot_s": rounded(oneShotSeconds), "streamed_s": rounded(streamSeconds)]
    }

    func run() async throws -> [String: Any] {
        var runs: [[String: Any]] = []
        var watermarkedTotal = 0.0, plainTotal = 0.0, audioSeconds = 0.0
        var lastSamples: [Int16] = [], coldFirst: [Int16] = []
        for size in firstChunkSizes {
            let r = try await synthesize(firstChunk: size, watermark: true)
            note("stream: first chunk \(size) tokens: first audio after \(rounded(r.firstChunk, 2)) s, \(rounded(r.audio, 2)) s of audio in \(rounded(r.total, 2)) s (RTF \(rounded(r.total / r.audio))), \(r.chunks) chunks, listener stalled \(rounded(r.stall, 2)) s, done at \(rounded(r.listenerDone, 2)) s")
            runs.append(["first_chunk_tokens": size, "first_chunk_s": rounded(r.firstChunk), "total_s": rounded(r.total),
                         "audio_s": rounded(r.audio), "rtf": rounded(r.total / r.audio), "chunks": r.chunks, "watermark": true,
                         "stall_s": rounded(r.stall), "listener_done_s": rounded(r.listenerDone)])
            if size == firstChunkSizes.first { coldFirst = r.samples }
            if size == firstChunkSizes.last { watermarkedTotal = r.total; audioSeconds = r.audio; lastSamples = r.samples }
        }
        let warmSize = firstChunkSizes.first!
        let warm = try await synthesize(firstChunk: warmSize, watermark: true, voice: .inMemory)
        note("stream: warm voice (T3 conditioning prefix cached), first chunk \(warmSize) tokens: first audio after \(rounded(warm.firstChunk, 2)) s, \(rounded(warm.audio, 2)) s of audio in \(rounded(warm.total, 2)) s (RTF \(rounded(warm.total / warm.audio))), \(warm.chunks) chunks, listener stalled \(rounded(warm.stall, 2)) s, done at \(rounded(warm.listenerDone, 2)) s")
        // The in-memory run above left the built-in voice's prefix on disk: a new engine reads it.
        let disk = try await synthesize(firstChunk: warmSize, watermark: true, voice: .fromDisk)
        note("stream: built-in voice prefix read from disk by a new engine, first chunk \(warmSize) tokens: first audio after \(rounded(disk.firstChunk, 2)) s, RTF \(rounded(disk.total / disk.audio))")
        let plain = try await synthesize(firstChunk: firstChunkSizes.last!, watermark: false)
        plainTotal = plain.total
        note("stream: without the watermark \(rounded(plain.total, 2)) s; same audio length: \(plain.samples.count == lastSamples.count)")
        let seams = try streamedVersusOneShot(firstChunk: firstChunkSizes.last!)
        var watermarkWork: [String: Any] = [:]
        if let perthCheckpoint, FileManager.default.fileExists(atPath: perthCheckpoint) {
            let seconds = try watermarkSeconds(of: warm, checkpoint: perthCheckpoint)
            note("stream: the watermark's own work on the warm run's \(rounded(warm.audio, 2)) s in its \(warm.chunkSamples.count) chunks: \(rounded(seconds, 3)) s (median of 5) = \(rounded(100 * seconds / warm.total, 2)) % of that run's \(rounded(warm.total, 2)) s")
            watermarkWork = ["seconds": rounded(seconds, 4), "share_of_warm_run": rounded(seconds / warm.total, 4),
                             "method": "the warm run's audio through a fresh WatermarkStream in its chunks, median of 5 in this process, over that run's wall time"]
        }
        var document: [String: Any] = [
            "streamed_vs_one_shot": seams,
            "model": model.path, "s3gen_precision": s3genPrecision.resolved.rawValue, "strategy": strategy.rawValue,
            "flow_prompt_tokens": flowPromptTokens, "text": text, "language": language ?? NSNull(), "max_tokens": maxTokens, "seed": seed, "runs": runs,
            "warm_voice_run": ["first_chunk_tokens": warmSize, "first_chunk_s": rounded(warm.firstChunk), "total_s": rounded(warm.total),
                               "audio_s": rounded(warm.audio), "rtf": rounded(warm.total / warm.audio), "chunks": warm.chunks,
                               "stall_s": rounded(warm.stall), "listener_done_s": rounded(warm.listenerDone),
                               "watermark": true, "same_samples_as_cold": warm.samples == coldFirst],
            "prefix_from_disk_run": ["first_chunk_tokens": warmSize, "first_chunk_s": rounded(disk.firstChunk), "total_s": rounded(disk.total),
                                     "audio_s": rounded(disk.audio), "rtf": rounded(disk.total / disk.audio), "chunks": disk.chunks,
                                     "watermark": true, "same_samples_as_cold": disk.samples == coldFirst],
            "watermark": ["with_s": rounded(watermarkedTotal), "without_s": rounded(plainTotal),
                          "share": rounded((watermarkedTotal - plainTotal) / watermarkedTotal, 4), "work": watermarkWork],
        ]
        if let python, let upstreamCheckpoint {
            let info = try await StreamingTTS(model: .directory(model), watermark: false).info()
            let arguments = ["tools/bench/tts_upstream.py", "--checkpoint", upstreamCheckpoint, "--family", info.family.rawValue,
                             "--text", text, "--max-tokens", String(maxTokens), "--threads", String(threads)]
                + (language.map { ["--language", $0] } ?? [])
            note("stream: running upstream PyTorch: \(python) \(arguments.joined(separator: " "))")
            let upstream = try runReferencePython(python, arguments: arguments, threads: threads)
            document["upstream"] = upstream
            if let seconds = upstream["seconds"] as? Double, let audio = upstream["audio_s"] as? Double {
                note("stream: upstream generate: \(rounded(audio, 2)) s of audio in \(rounded(seconds, 2)) s (RTF \(rounded(seconds / audio))), first audio at the end")
                document["speedup_rtf"] = rounded((seconds / audio) / (watermarkedTotal / audioSeconds), 2)
            }
        }
        return document
    }
}
