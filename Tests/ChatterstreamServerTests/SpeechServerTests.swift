import ChatterAudio
import ChatterstreamServer
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// `chatterstream serve` end to end: the HTTP server on 127.0.0.1 (free port) over the tiny engine,
/// talked to as a client would (URLSession; a raw socket for hanging up mid-stream; ffmpeg for HLS).
@Suite(.serialized) struct SpeechServerTests {
    static var engine: StreamingTTS { StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config) }

    /// The PCM the engine makes for `text` with `seed`, asked directly.
    static func directPCM(_ text: String, seed: UInt64, encoding: AudioFormat? = nil) async throws -> (pcm: Data, encoded: Data) {
        var config = TinySpeechModels.config
        config.seed = seed
        var pcm = Data(), encoded = Data()
        for try await chunk in engine.synthesize(text, options: config, encoding: encoding) {
            pcm.append(chunk.pcm)
            encoded.append(chunk.encoded)
        }
        return (pcm, encoded)
    }

    @Test func healthAndInfo() async throws {
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let health = try await server.get("/health")
            print("GET /health → \(health.status) \(health.text)")
            #expect(health.status == 200)
            #expect(health.json["status"] as? String == "ok")
            #expect(health.json["loaded"] as? Bool == true)
            let info = try await server.get("/v1/info")
            print("GET /v1/info → \(info.status) \(info.text)")
            #expect(info.status == 200)
            #expect(info.json["family"] as? String == "chatterbox")
            #expect(info.json["device"] as? String == "cpu")
            #expect(info.json["precision"] as? String == "F32")
            #expect(info.json["kv_cache_precision"] as? String == "f32")
            #expect(info.json["s3gen_precision"] as? String == "f32")  // the tiny engine's S3Gen is loaded f32
            #expect(info.json["watermark"] as? String == "off")
            #expect((info.json["threads"] as? Int ?? 0) >= 1)
        }
    }

    @Test func pcmIsTheEnginesAudioByteForByte() async throws {
        let text = "Hello over HTTP, in raw samples."
        let direct = try await Self.directPCM(text, seed: 11)
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let reply = try await server.post("/v1/speech", json: ["text": text, "format": "pcm", "seed": 11])
            print("pcm: \(reply.status), \(reply.body.count) bytes over HTTP, \(direct.pcm.count) direct; headers \(reply.headers.filter { $0.key.lowercased().hasPrefix("x-audio") || $0.key.lowercased() == "content-type" })")
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type") == "application/octet-stream")
            #expect(reply.header("X-Audio-Encoding") == "s16le")
            #expect(reply.header("X-Audio-Sample-Rate") == "24000")
            #expect(reply.header("X-Audio-Channels") == "1")
            #expect(!direct.pcm.isEmpty)
            #expect(reply.body.count == direct.pcm.count)
            #expect(reply.body == direct.pcm, "the served PCM differs from the engine's for the same seed")
        }
    }

    @Test func opusDecodesToTheEnginesLength() async throws {
        let text = "Hello over HTTP, in Ogg Opus."
        let direct = try await Self.directPCM(text, seed: 12)
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let reply = try await server.post("/v1/speech", json: ["text": text, "format": "opus", "seed": 12])
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type") == "audio/ogg")
            let decoded = try OggOpusDecoder.decode(reply.body)
            print("opus: \(reply.body.count) bytes, \(decoded.count) samples decoded for \(direct.pcm.count / 2) synthesised")
            #expect(reply.body.starts(with: Data("OggS".utf8)))
            #expect(decoded.count == direct.pcm.count / 2)
        }
    }

    @Test func mp3IsServedAsMPEGAudio() async throws {
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let reply = try await server.post("/v1/speech", json: ["text": "Hello in MP3.", "format": "mp3", "seed": 13])
            let frames = MP3FrameHeader.splitFrames(reply.body)
            print("mp3: \(reply.status), \(reply.body.count) bytes, \(frames?.frames.count ?? -1) frames")
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type") == "audio/mpeg")
            #expect((frames?.frames.count ?? 0) > 0, "the body is not MP3 frames")
        }
    }

    @Test func wavIsAnOpenEndedHeaderThenThePCM() async throws {
        let text = "Hello over HTTP, as a wave file."
        let direct = try await Self.directPCM(text, seed: 14)
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let reply = try await server.post("/v1/speech", json: ["text": text, "format": "wav", "seed": 14])
            #expect(reply.status == 200)
            #expect(reply.header("Content-Type") == "audio/wav")
            let body = reply.body
            func u32(_ at: Int) -> UInt32 { body[at..<at + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) } }
            func u16(_ at: Int) -> UInt16 { UInt16(body[at]) | UInt16(body[at + 1]) << 8 }
            try #require(body.count >= 44, "\(body.count) bytes")
            print("wav: \(body.count) bytes = 44 + \(body.count - 44) (direct PCM \(direct.pcm.count)); RIFF size \(String(u32(4), radix: 16)), data size \(String(u32(40), radix: 16))")
            #expect(body.prefix(4) == Data("RIFF".utf8) && body[8..<16] == Data("WAVEfmt ".utf8) && body[36..<40] == Data("data".utf8))
            #expect(u32(4) == .max && u32(40) == .max, "sizes declare the unknown length as the maximum")
            #expect(u16(20) == 1 && u16(22) == 1 && u32(24) == 24_000 && u32(28) == 48_000 && u16(32) == 2 && u16(34) == 16)
            #expect(body.dropFirst(44) == direct.pcm)

            guard let ffmpeg = ExternalTool("ffmpeg") else {
                print("SKIPPED: ffmpeg is not on PATH, so the open-ended WAV was not read by a real client")
                return
            }
            let folder = try TemporaryDirectory()
            try body.write(to: folder.path("served.wav"))
            let input = folder.filePath("served.wav"), output = folder.filePath("decoded.raw")
            let result = try await offThePool { try ffmpeg.run(["-hide_banner", "-nostdin", "-v", "error", "-i", input, "-f", "s16le", output]) }
            let decoded = try Data(contentsOf: folder.path("decoded.raw"))
            print("ffmpeg read the served WAV: status \(result.status), \(decoded.count) bytes of PCM, stderr: \(result.stderr.isEmpty ? "(empty)" : result.stderr)")
            #expect(result.status == 0 && result.stderr.isEmpty)
            #expect(decoded == direct.pcm)
        }
    }

    @Test func concurrentRequestsEachGetTheirOwnAudio() async throws {
        let texts = (0..<3).map { "Concurrent caller \($0)." }
        var direct: [Data] = []
        for (i, text) in texts.enumerated() { direct.append(try await Self.directPCM(text, seed: UInt64(30 + i)).pcm) }
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let served = try await withThrowingTaskGroup(of: (Int, Data).self) { group in
                for (i, text) in texts.enumerated() {
                    group.addTask { (i, try await server.post("/v1/speech", json: ["text": text, "format": "pcm", "seed": 30 + i]).body) }
                }
                var out = [Data](repeating: Data(), count: texts.count)
                for try await (i, body) in group { out[i] = body }
                return out
            }
            print("concurrent: \(served.map(\.count)) bytes served, \(direct.map(\.count)) direct")
            for i in texts.indices { #expect(!served[i].isEmpty && served[i] == direct[i], "request \(i) differs from the same request made alone") }
        }
    }

    @Test func badRequestsGetJSONErrorsWithTheirStatus() async throws {
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let cases: [(String, Data, Int)] = [
                ("empty text", try JSONSerialization.data(withJSONObject: ["text": ""]), 400),
                ("blank text", try JSONSerialization.data(withJSONObject: ["text": "  \n "]), 400),
                ("unknown format", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "format": "vorbis"]), 400),
                ("unknown voice id", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "voice": "alice"]), 404),
                ("a path as voice", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "voice": "/nonexistent/voice.wav"]), 400),
                ("negative temperature", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "temperature": -1]), 400),
                ("zero first chunk", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "first_chunk_tokens": 0]), 400),
                ("no text field", try JSONSerialization.data(withJSONObject: ["format": "pcm"]), 400),
                ("seed of the wrong type", try JSONSerialization.data(withJSONObject: ["text": "Hi.", "seed": "seven"]), 400),
                ("not JSON", Data("text=hello".utf8), 400),
            ]
            for (name, body, status) in cases {
                for path in ["/v1/speech", "/v1/hls"] where !(path == "/v1/hls" && name == "unknown format") {
                    let reply = try await server.post(path, body: body)
                    let message = reply.errorMessage ?? ""
                    print("\(name) → POST \(path): \(reply.status) \(message)")
                    #expect(reply.status == status, "\(name) on \(path): \(reply.text)")
                    #expect(reply.header("Content-Type")?.hasPrefix("application/json") == true)
                    #expect(reply.errorType == "invalid_request_error" && !message.isEmpty, "\(name): \(reply.text)")
                }
            }
            for (method, path) in [("GET", "/nope"), ("POST", "/v1/info"), ("GET", "/v1/speech")] {
                let reply = try await server.request(method, path)
                print("\(method) \(path) → \(reply.status) \(reply.text)")
                #expect(reply.status == 404 || reply.status == 405)
                #expect(reply.errorMessage != nil, "\(reply.text)")
            }
            // The server still speaks afterwards.
            #expect(try await server.post("/v1/speech", json: ["text": "Still fine.", "format": "pcm"]).status == 200)
            #expect(server.server.hlsSessionCount == 0, "refused HLS requests left no session behind")
        }
    }

    @Test func hlsPlaylistGrowsToEndListAndEverySegmentIsServed() async throws {
        var tokens = TinySpeechModels.config
        tokens.maxTokens = 58
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: tokens)
        try await RunningSpeechServer.with(engine: engine) { server in
            let created = try await server.post("/v1/hls", json: ["text": "A playlist that grows as it is spoken.", "seed": 21])
            print("POST /v1/hls → \(created.status) \(created.text)")
            #expect(created.status == 201)
            let id = try #require(created.json["id"] as? String)
            let playlistPath = try #require(created.json["playlist"] as? String)
            #expect(playlistPath == "/v1/hls/\(id)/playlist.m3u8")

            var playlist = ""
            let deadline = ContinuousClock.now + .seconds(60)
            var polls = 0
            while !playlist.contains("#EXT-X-ENDLIST") && ContinuousClock.now < deadline {
                let reply = try await server.get(playlistPath)
                #expect(reply.status == 200)
                #expect(reply.header("Content-Type") == HLSSegmenter.playlistMIMEType)
                playlist = reply.text
                polls += 1
                try await Task.sleep(for: .milliseconds(50))
            }
            try #require(playlist.contains("#EXT-X-ENDLIST"), "no ENDLIST after \(polls) polls: \(playlist)")
            let uris = playlist.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
            print("playlist after \(polls) polls: \(uris.count) segments \(uris)")
            #expect(uris == (0..<uris.count).map { "\($0).ts" })
            #expect(uris.count >= 2)
            var bytes = 0
            for uri in uris {
                let segment = try await server.get("/v1/hls/\(id)/\(uri)")
                #expect(segment.status == 200)
                #expect(segment.header("Content-Type") == "video/mp2t")
                #expect(segment.body.first == 0x47 && segment.body.count % 188 == 0, "\(uri) is not MPEG-TS packets")
                bytes += segment.body.count
            }
            print("segments: \(bytes) bytes in all")
            #expect(try await server.get("/v1/hls/\(id)/\(uris.count).ts").status == 404)
            #expect(try await server.get("/v1/hls/\(id)/nonsense").status == 404)
            #expect(try await server.get("/v1/hls/nosuchsession/playlist.m3u8").status == 404)

            guard let ffmpeg = ExternalTool("ffmpeg") else {
                print("SKIPPED: ffmpeg is not on PATH, so the playlist was not played by a real client (apt-get install ffmpeg)")
                return
            }
            let url = server.baseURL + playlistPath
            let result = try await offThePool { try ffmpeg.run(["-hide_banner", "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"]) }
            print("ffmpeg -i \(url) -f null -: status \(result.status), stderr: \(result.stderr.isEmpty ? "(empty)" : result.stderr)")
            #expect(result.status == 0)
            #expect(result.stderr.isEmpty, "ffmpeg reported errors playing the playlist")
        }
    }

    @Test func endedHLSSessionsExpire() async throws {
        try await RunningSpeechServer.with(engine: Self.engine, configure: { $0.hlsSessionLifetime = .milliseconds(300) }) { server in
            let created = try await server.post("/v1/hls", json: ["text": "Short lived.", "seed": 22])
            let playlistPath = try #require(created.json["playlist"] as? String)
            let deadline = ContinuousClock.now + .seconds(60)
            var lastStatus = 0
            var sawEnd = false
            while ContinuousClock.now < deadline {
                let reply = try await server.get(playlistPath)
                lastStatus = reply.status
                if reply.text.contains("#EXT-X-ENDLIST") { sawEnd = true }
                if reply.status == 404 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            print("session ended: \(sawEnd); then its playlist answered \(lastStatus); sessions kept: \(server.server.hlsSessionCount)")
            #expect(sawEnd)
            #expect(lastStatus == 404)
            #expect(server.server.hlsSessionCount == 0)
        }
    }

    @Test func aClientThatHangsUpCancelsItsRun() async throws {
        let engine = DecodeObservingEngine(tts: Self.engine, stepDelay: 0.04)
        try await RunningSpeechServer.with(engine: engine) { server in
            let request = try JSONSerialization.data(withJSONObject: [
                "text": "Hang up after the first chunk please.", "format": "pcm", "first_chunk_tokens": 4, "max_tokens": 58,
            ])
            let port = server.port
            let stepsAtHangUp = try await offThePool {
                let connection = try LoopbackHTTPConnection(port: port)
                try connection.post("/v1/speech", json: request)
                let head = try connection.readHead(thenAtLeast: 1)
                let steps = engine.steps
                connection.close()
                #expect(head.lowercased().contains("transfer-encoding: chunked"), "not a chunked response: \(head)")
                print("hung up after: \(head.split(separator: "\r\n").first ?? "") at decode step \(steps)")
                return steps
            }
            // Wait (bounded) until generation stops moving.
            var last = engine.steps, stableSince = ContinuousClock.now
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline && ContinuousClock.now - stableSince < .milliseconds(500) {
                try await Task.sleep(for: .milliseconds(50))
                let now = engine.steps
                if now != last { last = now; stableSince = .now }
            }
            let finalSteps = engine.steps
            print("decode steps: \(stepsAtHangUp) at hang-up, \(finalSteps) when generation stopped (uncancelled: up to 58)")
            #expect(stepsAtHangUp < 50, "the first chunk came only after T3 finished: nothing to cancel")
            #expect(finalSteps - stepsAtHangUp <= 10, "generation went on for \(finalSteps - stepsAtHangUp) steps after the client left")
            #expect(finalSteps < 58)
            // The engine serves the next request.
            #expect(try await server.post("/v1/speech", json: ["text": "Next.", "format": "pcm"]).status == 200)
        }
    }

    @Test func anErrorAfterTheFirstChunkTruncatesTheTransfer() async throws {
        let engine = FailingAfterFirstChunkEngine(tts: Self.engine)
        try await RunningSpeechServer.with(engine: engine) { server in
            let request = try JSONSerialization.data(withJSONObject: ["text": "This one breaks after a chunk.", "format": "pcm"])
            let port = server.port
            let raw = try await offThePool {
                let connection = try LoopbackHTTPConnection(port: port)
                try connection.post("/v1/speech", json: request)
                return try connection.readToEnd()
            }
            let text = String(decoding: raw, as: UTF8.self)
            let terminated = raw.count >= 5 && raw.suffix(5) == Data("0\r\n\r\n".utf8)
            print("mid-stream failure: \(raw.count) bytes, status line '\(text.split(separator: "\r\n").first ?? "")', ends with the last-chunk marker: \(terminated)")
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(!terminated, "a failed synthesis must not look like a complete response")
            #expect(try await server.post("/v1/speech", json: ["text": "Fine again.", "format": "pcm"]).status == 200)
        }
    }

    @Test func requestsWaitingForTheModelGet503WithRetryAfterThenSucceed() async throws {
        let engine = GatedLoadingEngine(tts: Self.engine)
        try await RunningSpeechServer.with(engine: engine) { server in
            let health = try await server.get("/health")
            let early = try await server.post("/v1/speech", json: ["text": "Too early.", "format": "pcm"])
            print("while loading: /health \(health.text); speech → \(early.status) Retry-After \(early.header("Retry-After") ?? "none") \(early.text)")
            #expect(health.json["loaded"] as? Bool == false)
            #expect(early.status == 503 && early.header("Retry-After") == "5")
            #expect(early.errorMessage?.contains("still loading") == true)
            engine.open()
            let deadline = ContinuousClock.now + .seconds(20)
            while try await server.get("/health").json["loaded"] as? Bool != true && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let later = try await server.post("/v1/speech", json: ["text": "Now it works.", "format": "pcm"])
            print("after loading: speech → \(later.status), \(later.body.count) bytes")
            #expect(later.status == 200 && !later.body.isEmpty)
        }
    }

    @Test func aModelThatCannotLoadAnswers503() async throws {
        let missing = try TemporaryDirectory()
        let engine = StreamingTTS(model: .directory(missing.path("no-model")), device: .cpu, watermark: false)
        try await RunningSpeechServer.with(engine: engine) { server in
            let health = try await server.get("/health")
            #expect(health.status == 200 && health.json["loaded"] as? Bool == false, "\(health.text)")
            let deadline = ContinuousClock.now + .seconds(20)
            var reply = try await server.post("/v1/speech", json: ["text": "Hi."])
            while reply.errorMessage?.contains("failed to load") != true && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                reply = try await server.post("/v1/speech", json: ["text": "Hi."])
            }
            print("speech without a model → \(reply.status) \(reply.text)")
            #expect(reply.status == 503)
            #expect(reply.errorMessage?.contains("failed to load") == true)
            #expect(try await server.get("/v1/info").status == 503)
        }
    }
}

/// The tiny engine with T3 slowed to `stepDelay` a decode step (so a chunk arrives while it still
/// generates) and its steps counted, to see when a run stops.
final class DecodeObservingEngine: SpeechEngine {
    let tts: StreamingTTS
    let stepDelay: Double
    private let counter = Mutex(0)

    init(tts: StreamingTTS, stepDelay: Double) {
        self.tts = tts
        self.stepDelay = stepDelay
    }

    var steps: Int { counter.withLock { $0 } }
    var isLoaded: Bool { tts.isLoaded }
    func loadModel() async throws { try await tts.loadModel() }
    func info() async throws -> StreamingTTS.Info { try await tts.info() }
    var options: SynthesisOptions { tts.options }
    var queuedRuns: Int { tts.queuedRuns }
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws { try await tts.saveVoice(fromRecording: recording, to: destination) }

    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?) -> AsyncThrowingStream<AudioChunk, Error> {
        let delay = stepDelay
        return tts.synthesize(text, voice: voice, options: options, encoding: encoding) { [self] step in
            counter.withLock { $0 = step }
            Thread.sleep(forTimeInterval: delay)
        }
    }
}

/// The tiny engine, reporting itself unloaded and holding `loadModel` until `open()`: the server's
/// state while a real model downloads or maps its weights.
final class GatedLoadingEngine: SpeechEngine {
    let tts: StreamingTTS
    private let opened = Mutex(false)

    init(tts: StreamingTTS) { self.tts = tts }

    func open() { opened.withLock { $0 = true } }
    var isLoaded: Bool { opened.withLock { $0 } }
    func loadModel() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !isLoaded && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
    }
    func info() async throws -> StreamingTTS.Info { try await tts.info() }
    var options: SynthesisOptions { tts.options }
    var queuedRuns: Int { tts.queuedRuns }
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws { try await tts.saveVoice(fromRecording: recording, to: destination) }
    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?) -> AsyncThrowingStream<AudioChunk, Error> {
        tts.synthesize(text, voice: voice, options: options, encoding: encoding)
    }
}

/// The tiny engine whose streams fail after their first chunk (an error the status line can no
/// longer report).
final class FailingAfterFirstChunkEngine: SpeechEngine {
    struct Broken: Error {}
    let tts: StreamingTTS
    private let calls = Mutex(0)

    init(tts: StreamingTTS) { self.tts = tts }

    var isLoaded: Bool { true }
    func loadModel() async throws {}
    func info() async throws -> StreamingTTS.Info { try await tts.info() }
    var options: SynthesisOptions { tts.options }
    var queuedRuns: Int { tts.queuedRuns }
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws { try await tts.saveVoice(fromRecording: recording, to: destination) }
    /// Only the first call fails, so the server can be seen to work afterwards.
    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?) -> AsyncThrowingStream<AudioChunk, Error> {
        let upstream = tts.synthesize(text, voice: voice, options: options, encoding: encoding)
        guard calls.withLock({ $0 += 1; return $0 }) == 1 else { return upstream }
        return AsyncThrowingStream { continuation in
            let task = Task {
                for try await chunk in upstream {
                    continuation.yield(chunk)
                    break
                }
                continuation.finish(throwing: Broken())
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
