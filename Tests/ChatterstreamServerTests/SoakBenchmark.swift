import ChatterModels
import ChatterstreamServer
import ChatterTensor
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// The soak and fault benchmark (issue 19; not CI: it takes minutes). Run it with
///
///     CHATTERSTREAM_SOAK=1000 swift test --filter SoakBenchmark
///
/// `CHATTERSTREAM_SOAK` utterances on the tiny engine: half straight through one `StreamingTTS`, half
/// through one `SpeechServer` (`POST /v1/speech` on loopback), with the process's RSS sampled every
/// 20 utterances, one request in 7 cancelled at a random point (the engine's consumer stops; the
/// HTTP client hangs up after a random number of bytes), one in 25 a client that stalls its reads
/// for 2 s, and half-way a model directory made unreadable (moved away) under a second engine.
/// Prints one JSON line (`soak: {…}`) and checks what must hold: RSS after warm-up within 5 %, every
/// request answered or cancelled, the engines serving after each fault, no request over its wall
/// limit.
@Suite(.serialized) struct SoakBenchmark {
    static let utterances = Int(ProcessInfo.processInfo.environment["CHATTERSTREAM_SOAK"] ?? "") ?? 0

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static let texts = ["Hello there.", "The quick brown fox jumps over the lazy dog.", "One, two, three. Four!",
                        "A slightly longer sentence, with a clause or two, to speak.", "Short."]

    /// A converted model directory of the tiny model (as HubToSpeechTests' conversion lays it out).
    static func writeModelDirectory(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let t3Keys = TinySpeechModels.t3Fixture.file.entries.map(\.name).filter { $0.hasPrefix("tiny.w.") }.map { String($0.dropFirst(7)) }
        let s3genKeys = TinySpeechModels.s3genFixture.file.entries.map(\.name).filter { $0.hasPrefix("model.") }.map { String($0.dropFirst(6)) }
        try TinySpeechModels.write(TinySpeechModels.t3Weights, keys: t3Keys, to: url.appendingPathComponent("t3.safetensors"))
        try TinySpeechModels.write(TinySpeechModels.s3genWeights, keys: s3genKeys, to: url.appendingPathComponent("s3gen.safetensors"))
        let voice = try TinySpeechModels.voiceTensors()
        try SafetensorsWriter.write(voice.keys.sorted().map { (name: $0, tensor: voice[$0]!) },
                                    to: url.appendingPathComponent("conds.safetensors").path)
        try FileManager.default.copyItem(at: TinySpeechModels.tokenizerURL, to: url.appendingPathComponent("tokenizer.json"))
        var files: [ModelManifest.File] = []
        for name in ["conds.safetensors", "s3gen.safetensors", "t3.safetensors", "tokenizer.json"] {
            let data = try Data(contentsOf: url.appendingPathComponent(name))
            files.append(.init(name: name, bytes: data.count, sha256: SHA256.hex(of: data), group: String(name.prefix { $0 != "." }),
                               dtype: nil, tensors: nil))
        }
        let manifest = ModelManifest(format: "chatterstream", formatVersion: ModelManifest.currentFormatVersion, family: .chatterbox,
                                     files: files, sources: [], dropped: [], createdBy: "SoakBenchmark",
                                     hyperparameters: ModelHyperparameters(t3: TinySpeechModels.t3Config,
                                                                           s3genDecoderHeads: TinySpeechModels.decoderHeads,
                                                                           hift: TinySpeechModels.hift))
        try JSONEncoder().encode(manifest).write(to: url.appendingPathComponent("manifest.json"))
    }

    struct Tally {
        var completed = 0, cancelled = 0, stalled = 0, failed = 0
        var longestSeconds = 0.0
        var rss: [Int] = []
        var faults: [String: String] = [:]
    }

    @Test(.enabled(if: utterances > 0, "set CHATTERSTREAM_SOAK=<utterances> to run"))
    func soak() async throws {
        let limits = SynthesisLimits()
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config, limits: limits)
        var rng = SplitMix64(seed: 0x50A4)
        var tally = Tally()
        let started = ContinuousClock.now
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        func sample(_ index: Int) { if index % 20 == 0 { tally.rss.append(Self.residentBytes()) } }

        let scratch = try TemporaryDirectory()
        let modelDirectory = scratch.url.appendingPathComponent("model")
        try Self.writeModelDirectory(modelDirectory)
        let fromDirectory = try await StreamingTTS(model: .directory(modelDirectory), options: TinySpeechModels.config, watermark: false).load()

        // Half through the engine.
        let half = Self.utterances / 2
        for index in 0..<half {
            sample(index)
            var config = TinySpeechModels.config
            config.seed = rng.next()
            let text = Self.texts[Int(rng.next() % UInt64(Self.texts.count))]
            let cancelAfter = rng.next() % 7 == 0 ? Int(rng.next() % 3) : nil
            let t0 = ContinuousClock.now
            let source = index % 10 == 0 ? fromDirectory : engine
            do {
                var chunks = 0
                for try await _ in source.synthesize(text, options: config) {
                    chunks += 1
                    if let cancelAfter, chunks > cancelAfter { break }
                }
                if cancelAfter != nil && chunks > cancelAfter! { tally.cancelled += 1 } else { tally.completed += 1 }
            } catch {
                tally.failed += 1
                print("soak: engine utterance \(index) failed: \(error)")
            }
            tally.longestSeconds = max(tally.longestSeconds, seconds(ContinuousClock.now - t0))
            if index == half / 2 {
                // The model directory goes away under a loaded engine and before a new one loads.
                let moved = scratch.url.appendingPathComponent("moved-away")
                try FileManager.default.moveItem(at: modelDirectory, to: moved)
                try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: moved.path)
                do {
                    _ = try await StreamingTTS(model: .directory(modelDirectory), watermark: false).load()
                    tally.faults["model directory unreadable: new engine"] = "loaded (unexpected)"
                } catch {
                    tally.faults["model directory unreadable: new engine"] = "typed error: \(type(of: error))"
                }
                let after = try await StreamingTTSTests_collect(fromDirectory.synthesize("Still here."))
                tally.faults["model directory unreadable: loaded engine"] = after > 0 ? "kept serving (\(after) samples)" : "no audio"
            }
        }

        // Half through the server.
        try await RunningSpeechServer.with(engine: engine) { server in
            let port = server.port
            for index in half..<Self.utterances {
                sample(index)
                let text = Self.texts[Int(rng.next() % UInt64(Self.texts.count))]
                let body = try JSONSerialization.data(withJSONObject: ["text": text, "format": "pcm", "seed": Int(rng.next() % 1000)])
                let roll = rng.next() % 25
                let hangUpAfter = rng.next() % 7 == 0 ? Int(rng.next() % 20_000) : nil
                let t0 = ContinuousClock.now
                do {
                    if let hangUpAfter {
                        try await offThePool {
                            let connection = try LoopbackHTTPConnection(port: port)
                            try connection.post("/v1/speech", json: body)
                            _ = try connection.readHead(thenAtLeast: min(hangUpAfter, 1))
                            connection.close()
                        }
                        tally.cancelled += 1
                    } else if roll == 0 {
                        let raw = try await offThePool {
                            let connection = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 60)
                            try connection.post("/v1/speech", json: body)
                            _ = try connection.readHead(thenAtLeast: 1)
                            Thread.sleep(forTimeInterval: 2)
                            return try connection.readToChunkedEnd()
                        }
                        if raw.suffix(5) == Data("0\r\n\r\n".utf8) { tally.stalled += 1 } else { tally.failed += 1 }
                    } else {
                        let reply = try await server.post("/v1/speech", body: body)
                        if reply.status == 200 && !reply.body.isEmpty { tally.completed += 1 } else {
                            tally.failed += 1
                            print("soak: server utterance \(index): \(reply.status) \(reply.text.prefix(200))")
                        }
                    }
                } catch {
                    tally.failed += 1
                    print("soak: server utterance \(index) failed: \(error)")
                }
                tally.longestSeconds = max(tally.longestSeconds, seconds(ContinuousClock.now - t0))
            }
            let health = try await server.get("/health")
            tally.faults["server after the run"] = "GET /health \(health.status)"
        }

        let warm = Array(tally.rss.dropFirst(max(1, tally.rss.count / 10)))
        let low = warm.min() ?? 0, high = warm.max() ?? 0
        let drift = low > 0 ? Double(high - low) / Double(low) : 0
        // Each phase after its own warm-up (the server phase adds the HTTP stack's buffers).
        func phaseDrift(_ samples: ArraySlice<Int>) -> Double {
            let warm = samples.dropFirst(max(1, samples.count / 5))
            guard let low = warm.min(), let high = warm.max(), low > 0 else { return 0 }
            return Double(high - low) / Double(low) * 100
        }
        let engineSamples = tally.rss.prefix((half + 19) / 20), serverSamples = tally.rss.dropFirst((half + 19) / 20)
        let figures: [String: Any] = [
            "rss_series_mb": tally.rss.map { Double($0 / 100_000) / 10 },
            "rss_engine_phase_drift_percent": phaseDrift(engineSamples), "rss_server_phase_drift_percent": phaseDrift(serverSamples),
            "utterances": Self.utterances, "completed": tally.completed, "cancelled": tally.cancelled,
            "stalled_reads": tally.stalled, "failed": tally.failed,
            "rss_samples": tally.rss.count, "rss_warm_min_mb": Double(low) / 1e6, "rss_warm_max_mb": Double(high) / 1e6,
            "rss_warm_drift_percent": drift * 100, "rss_first_mb": Double(tally.rss.first ?? 0) / 1e6,
            "longest_request_s": tally.longestSeconds, "wall_limit_s": limits.maxWallSeconds,
            "total_s": seconds(ContinuousClock.now - started), "faults": tally.faults,
        ]
        let json = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
        print("soak: \(String(decoding: json, as: UTF8.self))")
        #expect(tally.failed == 0)
        #expect(tally.completed + tally.cancelled + tally.stalled == Self.utterances)
        #expect(drift <= 0.05, "RSS after warm-up moved \(drift * 100) %")
        #expect(tally.longestSeconds <= limits.maxWallSeconds)
        #expect(tally.faults["model directory unreadable: new engine"]?.hasPrefix("typed error") == true)
    }
}

/// Samples of a stream (the soak's own: the library tests' helper lives in another target).
private func StreamingTTSTests_collect(_ stream: AsyncThrowingStream<AudioChunk, Error>) async throws -> Int {
    var samples = 0
    for try await chunk in stream { samples += chunk.sampleCount }
    return samples
}
