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

    struct Run {
        var firstChunk: Double
        var total: Double
        var audio: Double
        var chunks: Int
        var samples: [Int16]
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
        for try await chunk in tts.synthesize(text) {
            if first == nil && chunk.sampleCount > 0 { first = now() }
            chunks += 1
            samples += chunk.samples
        }
        let end = now()
        return Run(firstChunk: Double((first ?? end) - start) / 1e9, total: Double(end - start) / 1e9,
                   audio: Double(samples.count) / 24_000, chunks: chunks, samples: samples)
    }

    /// Streamed vs one-shot S3Gen on the same speech tokens, noise and draws: the seam cost in dB.
    /// Chunks as the engine makes them (first, then 75), context as `SynthesisOptions`'s default.
    func streamedVersusOneShot(firstChunk: Int) throws -> [String: Any] {
        let converted = try ConvertedModel(directory: model)
        let shapes = converted.manifest.hyperparameters
        let s3gen = try S3Gen(weights: try converted.file(ConvertedFiles.s3gen), decoderHeads: shapes?.s3genDecoderHeads ?? 8,
                              vocoder: shapes?.hift ?? .chatterbox, precision: s3genPrecision)
        let reference = try S3Gen.reference(from: try converted.file(ConvertedFiles.builtinVoice))
        var rng = SplitMix64(seed: 99)
        let tokens = (0..<maxTokens).map { _ in Int(rng.next() % 6561) }
        let start = now()
        let oneShot = try S3GenStream.render(s3gen: s3gen, tokens: tokens, reference: reference, noiseSeed: 5, drawSeed: 6)
        let oneShotSeconds = Double(now() - start) / 1e9
        var stream = S3GenStream(s3gen: s3gen, reference: reference, noiseSeed: 5, drawSeed: 6,
                                 maxContextTokens: SynthesisOptions().flowContextTokens)
        var streamed: [Float] = [], offset = 0, size = firstChunk
        let streamStart = now()
        while offset < tokens.count {
            let end = min(tokens.count, offset + size)
            streamed += try stream.push(Array(tokens[offset..<end]), final: end == tokens.count)
            offset = end
            size = 75
        }
        let streamSeconds = Double(now() - streamStart) / 1e9
        var signal = 0.0, error = 0.0
        for (a, b) in zip(oneShot, streamed) { signal += Double(a * a); error += Double((a - b) * (a - b)) }
        let snr = 10 * log10(signal / max(error, 1e-30))
        note("stream: S3Gen streamed vs one-shot over \(tokens.count) random tokens: \(streamed.count) vs \(oneShot.count) samples, SNR \(rounded(snr, 1)) dB (one-shot \(rounded(oneShotSeconds, 1)) s, streamed \(rounded(streamSeconds, 1)) s)")
        return ["tokens": tokens.count, "samples_streamed": streamed.count, "samples_one_shot": oneShot.count,
                "snr_db": rounded(snr, 2), "one_shot_s": rounded(oneShotSeconds), "streamed_s": rounded(streamSeconds)]
    }

    func run() async throws -> [String: Any] {
        var runs: [[String: Any]] = []
        var watermarkedTotal = 0.0, plainTotal = 0.0, audioSeconds = 0.0
        var lastSamples: [Int16] = [], coldFirst: [Int16] = []
        for size in firstChunkSizes {
            let r = try await synthesize(firstChunk: size, watermark: true)
            note("stream: first chunk \(size) tokens: first audio after \(rounded(r.firstChunk, 2)) s, \(rounded(r.audio, 2)) s of audio in \(rounded(r.total, 2)) s (RTF \(rounded(r.total / r.audio))), \(r.chunks) chunks")
            runs.append(["first_chunk_tokens": size, "first_chunk_s": rounded(r.firstChunk), "total_s": rounded(r.total),
                         "audio_s": rounded(r.audio), "rtf": rounded(r.total / r.audio), "chunks": r.chunks, "watermark": true])
            if size == firstChunkSizes.first { coldFirst = r.samples }
            if size == firstChunkSizes.last { watermarkedTotal = r.total; audioSeconds = r.audio; lastSamples = r.samples }
        }
        let warmSize = firstChunkSizes.first!
        let warm = try await synthesize(firstChunk: warmSize, watermark: true, voice: .inMemory)
        note("stream: warm voice (T3 conditioning prefix cached), first chunk \(warmSize) tokens: first audio after \(rounded(warm.firstChunk, 2)) s, \(rounded(warm.audio, 2)) s of audio in \(rounded(warm.total, 2)) s (RTF \(rounded(warm.total / warm.audio)))")
        // The in-memory run above left the built-in voice's prefix on disk: a new engine reads it.
        let disk = try await synthesize(firstChunk: warmSize, watermark: true, voice: .fromDisk)
        note("stream: built-in voice prefix read from disk by a new engine, first chunk \(warmSize) tokens: first audio after \(rounded(disk.firstChunk, 2)) s, RTF \(rounded(disk.total / disk.audio))")
        let plain = try await synthesize(firstChunk: firstChunkSizes.last!, watermark: false)
        plainTotal = plain.total
        note("stream: without the watermark \(rounded(plain.total, 2)) s; same audio length: \(plain.samples.count == lastSamples.count)")
        let seams = try streamedVersusOneShot(firstChunk: firstChunkSizes.last!)
        var document: [String: Any] = [
            "streamed_vs_one_shot": seams,
            "model": model.path, "s3gen_precision": s3genPrecision.resolved.rawValue, "text": text, "language": language ?? NSNull(), "max_tokens": maxTokens, "seed": seed, "runs": runs,
            "warm_voice_run": ["first_chunk_tokens": warmSize, "first_chunk_s": rounded(warm.firstChunk), "total_s": rounded(warm.total),
                               "audio_s": rounded(warm.audio), "rtf": rounded(warm.total / warm.audio), "chunks": warm.chunks,
                               "watermark": true, "same_samples_as_cold": warm.samples == coldFirst],
            "prefix_from_disk_run": ["first_chunk_tokens": warmSize, "first_chunk_s": rounded(disk.firstChunk), "total_s": rounded(disk.total),
                                     "audio_s": rounded(disk.audio), "rtf": rounded(disk.total / disk.audio), "chunks": disk.chunks,
                                     "watermark": true, "same_samples_as_cold": disk.samples == coldFirst],
            "watermark": ["with_s": rounded(watermarkedTotal), "without_s": rounded(plainTotal),
                          "share": rounded((watermarkedTotal - plainTotal) / watermarkedTotal, 4)],
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
