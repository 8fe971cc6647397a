import ChatterAudio
import ChatterstreamServer
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// `POST /v1/audio/speech` as OpenAI's clients use it, the voice library, the API key, the limits
/// and hostile inputs, against the tiny engine on a loopback port.
@Suite(.serialized) struct OpenAISpeechTests {
    static var engine: StreamingTTS { StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config) }

    static func directPCM(_ text: String, seed: UInt64) async throws -> Data {
        var options = TinySpeechModels.config
        options.seed = seed
        var pcm = Data()
        for try await chunk in engine.synthesize(text, options: options) { pcm.append(chunk.pcm) }
        return pcm
    }

    /// ffmpeg's decoding of `bytes` (a file of `format`) as 24 kHz mono s16le.
    static func decode(_ bytes: Data, format: AudioFormat) async throws -> Data? {
        guard let ffmpeg = ExternalTool("ffmpeg") else { return nil }
        let folder = try TemporaryDirectory()
        let input = folder.filePath("in.\(format.fileExtension)"), output = folder.filePath("out.raw")
        try bytes.write(to: URL(fileURLWithPath: input))
        var arguments = ["-hide_banner", "-nostdin", "-v", "error"]
        if format == .pcm { arguments += ["-f", "s16le", "-ar", "24000", "-ac", "1"] }
        arguments += ["-i", input, "-f", "s16le", "-ar", "24000", "-ac", "1", output]
        let args = arguments
        let result = try await offThePool { try ffmpeg.run(args) }
        #expect(result.status == 0, "ffmpeg could not decode the \(format) answer: \(result.stderr)")
        return try? Data(contentsOf: URL(fileURLWithPath: output))
    }

    @Test func everyResponseFormatDecodesToTheEnginesDuration() async throws {
        let text = "Every format OpenAI names."
        let direct = try await Self.directPCM(text, seed: 41)
        let samples = direct.count / 2
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            for format in AudioFormat.allCases {
                let reply = try await server.post("/v1/audio/speech", json: [
                    "model": "tts-1", "input": text, "voice": "alloy", "response_format": format.rawValue, "seed": 41,
                ])
                #expect(reply.status == 200, "\(format): \(reply.text)")
                #expect(reply.header("Content-Type") == format.mimeType)
                guard let decoded = try await Self.decode(reply.body, format: format) else {
                    print("SKIPPED: ffmpeg is not on PATH, so the \(format) answer was not decoded by a real client")
                    continue
                }
                let count = decoded.count / 2
                print("\(format): \(reply.body.count) bytes → ffmpeg \(count) samples; engine \(samples)")
                switch format {
                case .pcm, .wav, .flac: #expect(decoded == direct, "\(format) must decode to the engine's PCM exactly")
                case .opus: #expect(count == samples)
                case .mp3: #expect(count >= samples && count <= samples + 2 * 1152 + 576)
                case .aac: #expect(count >= samples && count <= samples + 2 * 1024)
                }
            }
            // The default format is mp3, as OpenAI's.
            let plain = try await server.post("/v1/audio/speech", json: ["model": "tts-1", "input": "Default.", "voice": "nova"])
            #expect(plain.status == 200 && plain.header("Content-Type") == "audio/mpeg")
        }
    }

    @Test func sseDeltasReassembleTheEnginesPCMExactly() async throws {
        let text = "Server sent events, byte for byte."
        let direct = try await Self.directPCM(text, seed: 42)
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let reply = try await server.post("/v1/audio/speech", json: [
                "model": "tts-1", "input": text, "voice": "alloy", "response_format": "pcm", "stream_format": "sse", "seed": 42,
            ])
            #expect(reply.status == 200 && reply.header("Content-Type") == "text/event-stream")
            var pcm = Data()
            var types: [String] = []
            for event in reply.text.components(separatedBy: "\n\n") where event.hasPrefix("data: ") {
                let object = try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any] ?? [:]
                let type = object["type"] as? String ?? "?"
                types.append(type)
                if type == "speech.audio.delta", let audio = object["audio"] as? String { pcm.append(Data(base64Encoded: audio) ?? Data()) }
            }
            print("sse: \(types.count) events (\(types.filter { $0 == "speech.audio.delta" }.count) deltas, last \(types.last ?? "-")), \(pcm.count) bytes; engine \(direct.count)")
            #expect(types.last == "speech.audio.done")
            #expect(pcm == direct, "the SSE deltas do not reassemble to the engine's PCM")
        }
    }

    @Test func speedScalesTheDuration() async throws {
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            let normal = try await server.post("/v1/audio/speech", json: ["input": "Speed it up.", "response_format": "pcm", "seed": 43])
            let fast = try await server.post("/v1/audio/speech", json: ["input": "Speed it up.", "response_format": "pcm", "seed": 43, "speed": 2.0])
            let bad = try await server.post("/v1/audio/speech", json: ["input": "Speed it up.", "speed": 4.5])
            print("speed: 1.0 → \(normal.body.count) bytes, 2.0 → \(fast.body.count) bytes; 4.5 → \(bad.status) \(bad.errorMessage ?? "")")
            #expect(normal.status == 200 && fast.status == 200)
            #expect(abs(Double(fast.body.count) / Double(normal.body.count) - 0.5) < 0.05)
            #expect(bad.status == 400 && bad.errorParam == "speed")
        }
    }

    @Test func hostileInputsGetTheirStatusAndTheServerKeepsServing() async throws {
        try await RunningSpeechServer.with(engine: Self.engine, configure: { $0.idleTimeout = .seconds(1) }) { server in
            func post(_ body: String, contentType: String = "application/json") async throws -> RunningSpeechServer.Reply {
                try await server.post("/v1/audio/speech", body: Data(body.utf8), contentType: contentType)
            }
            let cases: [(String, String, String, Int, String?)] = [
                ("bad JSON", #"{"input": "Hi.""#, "application/json", 400, nil),
                ("input of the wrong type", #"{"input": 7}"#, "application/json", 400, "input"),
                ("seed -1", #"{"input": "Hi.", "seed": -1}"#, "application/json", 400, "seed"),
                ("temperature 1e39", #"{"input": "Hi.", "temperature": 1e39}"#, "application/json", 400, "temperature"),
                ("max_tokens 100000", #"{"input": "Hi.", "max_tokens": 100000}"#, "application/json", 400, "max_tokens"),
                ("max_tokens 2^63-1", #"{"input": "Hi.", "max_tokens": 9223372036854775807}"#, "application/json", 400, "max_tokens"),
                ("huge number", #"{"input": "Hi.", "top_k": 1e400}"#, "application/json", 400, nil),
                ("input over 4096", #"{"input": "\#(String(repeating: "a", count: 4097))"}"#, "application/json", 400, "input"),
                ("unknown model", #"{"input": "Hi.", "model": "whisper-1"}"#, "application/json", 400, "model"),
                ("traversal voice", #"{"input": "Hi.", "voice": "../../etc/passwd"}"#, "application/json", 400, "voice"),
                ("server path voice", #"{"input": "Hi.", "voice": "/etc/passwd"}"#, "application/json", 400, "voice"),
                ("form-encoded body", "input=Hi.", "application/x-www-form-urlencoded", 415, nil),
            ]
            for (name, body, type, status, param) in cases {
                let reply = try await post(body, contentType: type)
                print("\(name) → \(reply.status) param \(reply.errorParam ?? "null"): \(reply.errorMessage ?? reply.text)")
                #expect(reply.status == status, "\(name): \(reply.text)")
                #expect(reply.errorMessage?.isEmpty == false && reply.error?.keys.contains("param") == true, "\(name): \(reply.text)")
                if let param { #expect(reply.errorParam == param, "\(name): \(reply.text)") }
                #expect(reply.errorMessage?.contains("not JSON") != true || name == "bad JSON" || name == "huge number", "\(name)")
            }
            let tooLarge = try await server.post("/v1/audio/speech", body: Data(repeating: 0x20, count: 2 << 20))
            print("2 MiB body → \(tooLarge.status)")
            #expect(tooLarge.status == 413)

            // `Expect: 100-continue`, as curl and URLSession send it above 1 MiB. Too large by its
            // declared length: the 413 comes before any body byte is sent. Within the limit: a 100
            // Continue at once (the idle timeout here is 1 s, curl's own wait for it as long), then
            // the answer to the body.
            let port = server.port
            let (refusal, interim, answer, unasked) = try await offThePool { () -> (String, String, String, String) in
                func head(length: Int, expect: Bool = true) -> Data {
                    Data("POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\(expect ? "Expect: 100-continue\r\n" : "")\r\n".utf8)
                }
                let refused = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 10)
                defer { refused.close() }
                try refused.sendRaw(head(length: 2 << 20))
                let refusal = try refused.readHead(thenAtLeast: 0)
                // Without Expect the whole body comes anyway: it is read and dropped, so the client
                // gets its 413 rather than a reset.
                let eager = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 10)
                defer { eager.close() }
                try eager.sendRaw(head(length: 2 << 20, expect: false) + Data(repeating: 0x20, count: 2 << 20))
                let unasked = try eager.readHead(thenAtLeast: 0)
                let accepted = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 10)
                defer { accepted.close() }
                let json = Data(#"{"input": "Continue.", "response_format": "pcm"}"#.utf8)
                try accepted.sendRaw(head(length: json.count))
                let interim = try accepted.readHead(thenAtLeast: 0)
                try accepted.sendRaw(json)
                return (refusal, interim, try accepted.readHead(thenAtLeast: 0), unasked)
            }
            let firstLine = { (head: String) in head.components(separatedBy: "\r\n").first ?? "" }
            print("Expect: 100-continue, 2 MiB declared → '\(firstLine(refusal))'; 48 bytes → '\(firstLine(interim))' then '\(firstLine(answer))'")
            #expect(refusal.hasPrefix("HTTP/1.1 413") && refusal.lowercased().contains("connection: close"), "\(refusal)")
            #expect(interim.hasPrefix("HTTP/1.1 100"), "\(interim)")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            print("no Expect, 2 MiB sent → '\(firstLine(unasked))'")
            #expect(unasked.hasPrefix("HTTP/1.1 413"), "\(unasked)")

            // A slow-loris client: half a request head, then nothing. The idle timeout closes it.
            let closedAfter = try await offThePool { () -> Double in
                let connection = try LoopbackHTTPConnection(port: port, receiveTimeoutSeconds: 10)
                try connection.sendRaw(Data("POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le".utf8))
                let start = Date()
                _ = try? connection.readToEnd()
                return Date().timeIntervalSince(start)
            }
            print("slow-loris connection closed by the server after \(String(format: "%.1f", closedAfter)) s (idle timeout 1 s)")
            #expect(closedAfter < 5)
            #expect(try await post(#"{"input": "Still serving.", "response_format": "pcm"}"#).status == 200)
        }
    }

    @Test func voicePathsOnlyWithTheFlagAndThenRegularFilesOnlyAnsweredAlike() async throws {
        let folder = try TemporaryDirectory()
        let fifo = folder.filePath("voice.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let secret = folder.filePath("secret.wav")
        try Data("SECRETBYTES-not-audio".utf8).write(to: URL(fileURLWithPath: secret))
        try await RunningSpeechServer.with(engine: Self.engine, configure: { $0.allowVoicePaths = true }) { server in
            var answers: [String: RunningSpeechServer.Reply] = [:]
            for path in [folder.filePath("missing.wav"), fifo, "/dev/zero", "/proc/self", folder.url.path] {
                let reply = try await withTimeout(seconds: 20, "a voice path \(path)") {
                    try await server.post("/v1/audio/speech", json: ["input": "Hi.", "voice": path, "response_format": "pcm"])
                }
                answers[path] = reply
                print("voice \(path) → \(reply.status) \(reply.errorMessage ?? "")")
                #expect(reply.status == 404, "\(path): \(reply.text)")
                #expect(reply.errorMessage == "no usable voice file at '\(path)' (voice paths must name a readable regular file on the server)")
            }
            let unusable = try await server.post("/v1/audio/speech", json: ["input": "Hi.", "voice": secret, "response_format": "pcm"])
            print("voice \(secret) (not audio) → \(unusable.status) \(unusable.errorMessage ?? "")")
            #expect(unusable.status == 400)
            #expect(!unusable.text.contains("SECRET") && !unusable.text.contains("53 45 43") && !unusable.text.contains("534543"),
                    "the error echoes the file's bytes: \(unusable.text)")
            // The FIFO blocked nothing: synthesis still runs.
            #expect(try await server.post("/v1/audio/speech", json: ["input": "Still fine.", "response_format": "pcm"]).status == 200)
        }
    }

    @Test func apiKeyIsRequiredEverywhereButHealthAndExposureNeedsOne() async throws {
        try await RunningSpeechServer.with(engine: Self.engine, configure: { $0.apiKey = "sk-test-123" }) { server in
            let health = try await server.get("/health")
            let none = try await server.post("/v1/audio/speech", json: ["input": "Hi."])
            let wrong = try await server.post("/v1/audio/speech", body: Data(#"{"input":"Hi."}"#.utf8), headers: ["Authorization": "Bearer sk-test-124"])
            let right = try await server.post("/v1/audio/speech", body: Data(#"{"input":"Hi.","response_format":"pcm"}"#.utf8),
                                              headers: ["Authorization": "Bearer sk-test-123"])
            let models = try await server.get("/v1/models")
            print("with a key: /health \(health.status), no key \(none.status) \(none.errorMessage ?? ""), wrong \(wrong.status), right \(right.status), /v1/models without \(models.status)")
            #expect(health.status == 200)
            #expect(none.status == 401 && wrong.status == 401 && models.status == 401)
            #expect(none.errorType == "authentication_error")
            #expect(right.status == 200 && !right.body.isEmpty)
        }
        var exposed = SpeechServer.Configuration()
        exposed.host = "0.0.0.0"
        #expect(throws: ServerConfigurationError.self) { _ = try SpeechServer(engine: Self.engine, configuration: exposed) }
        exposed.apiKey = "k"
        _ = try SpeechServer(engine: Self.engine, configuration: exposed)
        exposed.apiKey = nil
        exposed.insecure = true
        _ = try SpeechServer(engine: Self.engine, configuration: exposed)
    }

    @Test func operationsEndpoints() async throws {
        try await RunningSpeechServer.with(engine: Self.engine) { server in
            _ = try await server.post("/v1/audio/speech", json: ["input": "Count me.", "response_format": "pcm"])
            let ready = try await server.get("/ready")
            let models = try await server.get("/v1/models")
            let metrics = try await server.get("/metrics")
            let ids = (models.json["data"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            print("/ready \(ready.status); /v1/models \(ids); /metrics \(metrics.body.count) bytes")
            #expect(ready.status == 200)
            #expect(ids.contains("chatterbox") && ids.contains("tts-1") && ids.contains("gpt-4o-mini-tts"))
            for name in ["chatterstream_requests_total", "chatterstream_time_to_first_byte_seconds", "chatterstream_real_time_factor",
                         "chatterstream_queue_depth", "chatterstream_speech_tokens_per_second"] {
                #expect(metrics.text.contains(name), "/metrics lacks \(name)")
            }
            #expect(metrics.text.contains(#"route="/v1/audio/speech""#))
        }
    }

    @Test func voiceLibraryUploadListUseDelete() async throws {
        let library = try TemporaryDirectory()
        let engine = VoiceSavingEngine(tts: Self.engine)
        try await RunningSpeechServer.with(engine: engine, configure: { $0.voicesDirectory = library.url; $0.maxVoiceSeconds = 5 }) { server in
            let recording = try TemporaryDirectory()
            let tone = (0..<48_000).map { Float(sin(Double($0) * 0.05) * 0.3) }
            try WAVFile.write(tone, sampleRate: 24_000, to: recording.filePath("me.wav"), format: .pcm16)
            let wav = try Data(contentsOf: recording.path("me.wav"))
            func upload(_ file: Data, name: String) async throws -> RunningSpeechServer.Reply {
                let boundary = "chatterstream-test-boundary"
                var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n\(name)\r\n".utf8)
                body += Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"me.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
                body += file + Data("\r\n--\(boundary)--\r\n".utf8)
                return try await server.post("/v1/audio/voices", body: body, contentType: "multipart/form-data; boundary=\(boundary)")
            }
            let created = try await upload(wav, name: "My Voice")
            print("upload → \(created.status) \(created.text)")
            #expect(created.status == 201 && created.json["id"] as? String == "my-voice")
            let listed = try await server.get("/v1/audio/voices")
            #expect((listed.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["my-voice"])
            let spoken = try await server.post("/v1/audio/speech", json: ["input": "In my voice.", "voice": "my-voice", "response_format": "pcm"])
            #expect(spoken.status == 200 && !spoken.body.isEmpty)
            #expect(try await upload(wav, name: "My Voice").status == 409)
            #expect(try await upload(Data("not audio".utf8), name: "junk").status == 400)
            let long = (0..<(24_000 * 6)).map { Float(sin(Double($0) * 0.05) * 0.3) }
            try WAVFile.write(long, sampleRate: 24_000, to: recording.filePath("long.wav"), format: .pcm16)
            let tooLong = try await upload(try Data(contentsOf: recording.path("long.wav")), name: "long")
            print("6 s upload with a 5 s limit → \(tooLong.status) \(tooLong.errorMessage ?? "")")
            #expect(tooLong.status == 400)
            #expect(try await server.request("DELETE", "/v1/audio/voices/my-voice").status == 204)
            #expect(try await server.request("DELETE", "/v1/audio/voices/my-voice").status == 404)
            let gone = try await server.post("/v1/audio/speech", json: ["input": "Gone.", "voice": "my-voice"])
            #expect(gone.status == 404)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: library.url.path)
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
    }

    @Test func aFullQueueAnswers429WithRetryAfter() async throws {
        let tts = StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config, maxQueuedRuns: 1)
        let engine = DecodeObservingEngine(tts: tts, stepDelay: 0.02)
        try await RunningSpeechServer.with(engine: engine) { server in
            let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for i in 0..<4 {
                    group.addTask {
                        let reply = try await server.post("/v1/audio/speech", json: ["input": "Queue \(i).", "response_format": "pcm"])
                        return (reply.status, reply.header("Retry-After"))
                    }
                }
                var out: [(Int, String?)] = []
                for try await s in group { out.append(s) }
                return out
            }
            print("4 concurrent requests, queue limit 1: \(statuses)")
            #expect(statuses.contains { $0.0 == 429 && $0.1 == "5" })
            #expect(statuses.contains { $0.0 == 200 })
            #expect(try await server.post("/v1/audio/speech", json: ["input": "After.", "response_format": "pcm"]).status == 200)
        }
    }

    /// A request whose wall time ran out (mostly queued behind others) is the engine's to retry, not
    /// the caller's input: 503 with Retry-After; the other limits stay 400.
    @Test func wallTimeAnswers503WithRetryAfterAndOtherLimits400() {
        let wall = APIError(classifying: SynthesisLimitExceeded.wallTime(900))
        #expect(wall.status == .serviceUnavailable && wall.retryAfterSeconds == 5)
        let text = APIError(classifying: SynthesisLimitExceeded(limit: "maxTextCharacters", value: 30_000, maximum: 20_000, advice: ""))
        #expect(text.status == .badRequest && text.retryAfterSeconds == nil)
    }

    @Test func aClientThatHangsUpBeforeTheFirstChunkCancelsItsRun() async throws {
        let engine = DecodeObservingEngine(tts: Self.engine, stepDelay: 0.04)
        try await RunningSpeechServer.with(engine: engine) { server in
            let request = try JSONSerialization.data(withJSONObject: [
                "input": "Hang up before any audio.", "response_format": "pcm", "first_chunk_tokens": 55, "max_tokens": 58,
            ])
            let port = server.port
            try await offThePool {
                let connection = try LoopbackHTTPConnection(port: port)
                try connection.post("/v1/audio/speech", json: request)
                Thread.sleep(forTimeInterval: 0.4)
                connection.close()
            }
            let atHangUp = engine.steps
            var last = engine.steps, stableSince = ContinuousClock.now
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline && ContinuousClock.now - stableSince < .milliseconds(500) {
                try await Task.sleep(for: .milliseconds(50))
                if engine.steps != last { last = engine.steps; stableSince = .now }
            }
            print("hung up before the first chunk at decode step \(atHangUp); generation stopped at \(engine.steps) (uncancelled: up to 58)")
            #expect(engine.steps < 40, "the run went on after the client left before its first chunk")
            #expect(try await server.post("/v1/audio/speech", json: ["input": "Next.", "response_format": "pcm"]).status == 200)
        }
    }

    @Test func hlsSessionsAreCappedAndCancellable() async throws {
        try await RunningSpeechServer.with(engine: Self.engine, configure: { $0.hlsMaxSessionSeconds = 0.5 }) { server in
            let created = try await server.post("/v1/hls", json: ["input": "A session longer than its cap allows.", "seed": 44])
            #expect(created.status == 201)
            let playlist = try #require(created.json["playlist"] as? String)
            var reply = try await server.get(playlist)
            let deadline = ContinuousClock.now + .seconds(30)
            while reply.status == 200 && !reply.text.contains("#EXT-X-ENDLIST") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                reply = try await server.get(playlist)
            }
            print("capped session: playlist → \(reply.status) \(reply.errorMessage ?? "")")
            #expect(reply.status == 413)
            let id = try #require(created.json["id"] as? String)
            #expect(try await server.request("DELETE", "/v1/hls/\(id)").status == 204)
            #expect(try await server.get(playlist).status == 404)
        }
    }
}

/// The tiny engine with a voice "cloner" that stores the built-in voice's conditionals (the tiny
/// model has no cloning networks; the library's storage, listing and use are what is tested).
final class VoiceSavingEngine: SpeechEngine {
    let tts: StreamingTTS
    init(tts: StreamingTTS) { self.tts = tts }
    var isLoaded: Bool { tts.isLoaded }
    func loadModel() async throws { try await tts.loadModel() }
    func info() async throws -> StreamingTTS.Info { try await tts.info() }
    var options: SynthesisOptions { tts.options }
    var queuedRuns: Int { tts.queuedRuns }
    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?) -> AsyncThrowingStream<AudioChunk, Error> {
        tts.synthesize(text, voice: voice, options: options, encoding: encoding)
    }
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws {
        try TinySpeechModels.builtinVoice().write(to: destination)
    }
}

/// An engine that yields `chunks` chunks of 1 MiB of silence as fast as they are taken, and records
/// when its stream is terminated (a consumer that cancels it): what a client that stops reading
/// must not hold forever.
final class FloodingEngine: SpeechEngine {
    let tts: StreamingTTS
    let chunks: Int
    private let terminated = Mutex(false)
    init(tts: StreamingTTS, chunks: Int) { self.tts = tts; self.chunks = chunks }
    var wasTerminated: Bool { terminated.withLock { $0 } }
    var isLoaded: Bool { true }
    func loadModel() async throws {}
    func info() async throws -> StreamingTTS.Info { try await tts.info() }
    var options: SynthesisOptions { tts.options }
    var queuedRuns: Int { 0 }
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws {}
    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?) -> AsyncThrowingStream<AudioChunk, Error> {
        let count = chunks
        let (stream, continuation) = AsyncThrowingStream<AudioChunk, Error>.makeStream(bufferingPolicy: .bufferingOldest(1))
        continuation.onTermination = { [self] reason in
            if case .cancelled = reason { terminated.withLock { $0 = true } }
        }
        Task {
            let silence = Data(count: 1 << 20)
            for i in 0..<count {
                while case .dropped = continuation.yield(AudioChunk(pcm: silence, sampleRate: 24_000, isFinal: i == count - 1, chunkIndex: i, encoded: silence)) {
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            continuation.finish()
        }
        return stream
    }
}

@Suite(.serialized) struct SlowReaderTests {
    @Test func aClientThatStopsReadingIsCutOffAndItsRunCancelled() async throws {
        let engine = FloodingEngine(tts: OpenAISpeechTests.engine, chunks: 200)
        try await RunningSpeechServer.with(engine: engine, configure: { $0.writeTimeout = .seconds(1) }) { server in
            let port = server.port
            let request = try JSONSerialization.data(withJSONObject: ["input": "Flood.", "response_format": "pcm"])
            let connection = try LoopbackHTTPConnection(port: port)
            try connection.post("/v1/audio/speech", json: request)
            // Read nothing: the socket buffers fill, the server's writes stall.
            let deadline = ContinuousClock.now + .seconds(20)
            while !engine.wasTerminated && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
            print("a client that stopped reading: the server cancelled its stream: \(engine.wasTerminated)")
            #expect(engine.wasTerminated, "200 MiB queued behind a client that reads nothing, and the run was never cancelled")
            connection.close()
            #expect(try await server.get("/health").status == 200)
        }
    }
}
