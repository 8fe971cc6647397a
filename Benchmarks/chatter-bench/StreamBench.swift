import ChatterModels
import ChatterTensor
import Chatterstream
import Foundation

/// End-to-end streaming on a converted full-size model: time to the first chunk with audio and the
/// real-time factor for each first-chunk size, the watermark's share of the time, and upstream's
/// one-shot `generate` timed in the same run (tools/bench/tts_upstream.py; upstream does not stream,
/// so its first audio is its whole utterance).
struct StreamBench {
    let model: URL
    let upstreamCheckpoint: String?
    let python: String?
    let threads: Int
    let text: String
    let maxTokens: Int
    let firstChunkSizes: [Int]
    let seed: UInt64

    struct Run {
        var firstChunk: Double
        var total: Double
        var audio: Double
        var chunks: Int
        var samples: [Int16]
    }

    func synthesize(firstChunk: Int, watermark: Bool) async throws -> Run {
        var config = StreamConfig()
        config.firstChunkTokens = firstChunk
        config.maxLength = maxTokens
        config.seed = seed
        let tts = try await StreamingTTS(model: .directory(model), config: config, watermark: watermark).load()
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

    func run() async throws -> [String: Any] {
        var runs: [[String: Any]] = []
        var watermarkedTotal = 0.0, plainTotal = 0.0, audioSeconds = 0.0
        var lastSamples: [Int16] = []
        for size in firstChunkSizes {
            let r = try await synthesize(firstChunk: size, watermark: true)
            note("stream: first chunk \(size) tokens: first audio after \(rounded(r.firstChunk, 2)) s, \(rounded(r.audio, 2)) s of audio in \(rounded(r.total, 2)) s (RTF \(rounded(r.total / r.audio))), \(r.chunks) chunks")
            runs.append(["first_chunk_tokens": size, "first_chunk_s": rounded(r.firstChunk), "total_s": rounded(r.total),
                         "audio_s": rounded(r.audio), "rtf": rounded(r.total / r.audio), "chunks": r.chunks, "watermark": true])
            if size == firstChunkSizes.last { watermarkedTotal = r.total; audioSeconds = r.audio; lastSamples = r.samples }
        }
        let plain = try await synthesize(firstChunk: firstChunkSizes.last!, watermark: false)
        plainTotal = plain.total
        note("stream: without the watermark \(rounded(plain.total, 2)) s; same audio length: \(plain.samples.count == lastSamples.count)")
        var document: [String: Any] = [
            "model": model.path, "text": text, "max_tokens": maxTokens, "seed": seed, "runs": runs,
            "watermark": ["with_s": rounded(watermarkedTotal), "without_s": rounded(plainTotal),
                          "share": rounded((watermarkedTotal - plainTotal) / watermarkedTotal, 4)],
        ]
        if let python, let upstreamCheckpoint {
            let info = try await StreamingTTS(model: .directory(model), watermark: false).info()
            let arguments = ["tools/bench/tts_upstream.py", "--checkpoint", upstreamCheckpoint, "--family", info.family.rawValue,
                             "--text", text, "--max-tokens", String(maxTokens), "--threads", String(threads)]
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
