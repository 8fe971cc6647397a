import ChatterAudio
import Chatterstream
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MultipartKit
import NIOCore
import NIOHTTPTypes
import ServiceLifecycle
import Synchronization

/// The engine over HTTP (Hummingbird), a drop-in for OpenAI's speech API:
///
/// - `POST /v1/audio/speech` (OpenAI's create-speech request, `SpeechRequest`) → the audio, streamed
///   as it is synthesised (`stream_format` `audio`) or as server-sent events (`sse`)
/// - `GET /v1/audio/voices`, `POST /v1/audio/voices` (multipart upload), `DELETE /v1/audio/voices/<id>`
/// - `GET /v1/models`, `GET /v1/info`, `GET /health` (liveness), `GET /ready` (model loaded), `GET /metrics`
/// - `POST /v1/hls` → 201 `{"id","playlist"}`; `GET /v1/hls/<id>/playlist.m3u8`, `GET /v1/hls/<id>/<n>.ts`,
///   `DELETE /v1/hls/<id>`
/// - `POST /v1/speech`: the first wave's endpoint, the same request with `text`/`format` (default wav)
///
/// Errors are OpenAI's JSON (`APIError`). The model is loaded in the background when the server
/// starts; requests that need it get 503 until it is ready.
public final class SpeechServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port (reported to `run`'s `onListening`).
        public var port = 8080
        /// The voice of requests that name none, "builtin", or one of OpenAI's names the library lacks.
        public var defaultVoice = Voice.builtin
        /// Where uploaded voices are kept (nil: no library; uploads answer 404).
        public var voicesDirectory: URL?
        /// Whether a request's `voice` may be a path on the server (local use only).
        public var allowVoicePaths = false
        /// Bearer token every endpoint but /health requires (nil: none).
        public var apiKey: String?
        /// Allow a non-loopback address without an API key.
        public var insecure = false
        /// Largest request body accepted (413 above), JSON requests.
        public var maxRequestBytes = 1 << 20
        /// Largest voice upload (413 above) and longest recording accepted.
        public var maxVoiceUploadBytes = 20 << 20
        public var maxVoiceSeconds = 60.0
        /// HLS sessions kept at once, running or ended.
        public var hlsSessionLimit = 32
        /// How long an ended HLS session's playlist and segments stay available.
        public var hlsSessionLifetime = Duration.seconds(600)
        /// Caps on one HLS session: PCM bytes synthesised (also bounding what it keeps) and seconds of audio.
        public var hlsMaxSessionBytes = 64 << 20
        public var hlsMaxSessionSeconds = 1200.0
        /// A connection with no traffic for this long is closed (slow or stalled clients).
        public var idleTimeout = Duration.seconds(30)
        /// A request's head must arrive whole within this of the connection opening or the previous
        /// response ending, and its body within the same again plus a second per
        /// `minimumBodyBytesPerSecond` bytes; else the connection is closed (`SlowClientGuard`: a
        /// client trickling bytes is never idle, so the idle timeout alone does not cut it).
        public var requestHeadTimeout = Duration.seconds(30)
        public var minimumBodyBytesPerSecond = 500
        /// A response write that the client does not take for this long (it stopped reading) ends the
        /// response and cancels its run.
        public var writeTimeout = Duration.seconds(60)
        /// On SIGTERM: how long in-flight responses may take to finish before they are cancelled.
        public var drainTimeout = Duration.seconds(30)
        /// On SIGTERM: how long /ready answers 503 while connections are still accepted, before the
        /// listener closes (the time a load balancer needs to see it and stop routing here).
        public var drainDelay = Duration.zero
        /// Log each request's text (off: logs carry method, path, status, size and time only).
        public var logText = false

        public init() {}

        /// Refuses a configuration that would expose the server without a key.
        public func checkExposure() throws {
            if apiKey == nil && !insecure && !Self.isLoopback(host) {
                throw ServerConfigurationError("refusing to listen on \(host) without an API key: anyone who can reach it could use it. Give --api-key (or CHATTERSTREAM_API_KEY), bind 127.0.0.1, or pass --insecure if the network is trusted.")
            }
        }

        static func isLoopback(_ host: String) -> Bool {
            host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
        }
    }

    public let engine: any SpeechEngine
    public let configuration: Configuration
    let logger: Logger
    let availability = ModelAvailability()
    let hlsSessions: HLSSessionStore
    let voices: VoiceLibrary?
    let metrics = ServerMetrics()

    public init(engine: some SpeechEngine, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "chatterstream.server")) throws {
        try configuration.checkExposure()
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        voices = try configuration.voicesDirectory.map { try VoiceLibrary(directory: $0) }
        hlsSessions = HLSSessionStore(limit: configuration.hlsSessionLimit, lifetime: configuration.hlsSessionLifetime)
    }

    /// HLS sessions currently kept (tests: expiry works).
    public var hlsSessionCount: Int { hlsSessions.count }

    /// Serves until the calling task is cancelled, then shuts down gracefully (no new connections,
    /// the responses in flight finish); `onListening` gets the bound port once the socket accepts
    /// connections.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await withServer(onListening: onListening) { app in
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            // The group runs in its own task: cancelling it directly would cancel the connections
            // mid-response; the caller's cancellation becomes a graceful shutdown instead.
            let serving = Task { try await group.run() }
            try await withTaskCancellationHandler {
                try await serving.value
            } onCancel: {
                Task { await group.triggerGracefulShutdown() }
            }
        }
    }

    /// Serves until SIGINT or SIGTERM, then drains: /ready (and every synthesis request) answers 503
    /// at once; for `drainDelay` the server still accepts connections, so a load balancer polling
    /// /ready sees it leave; then no new connections are accepted, the responses in flight finish,
    /// and those still running `drainTimeout` after that are cancelled.
    public func runUntilSignalled(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await withServer(onListening: onListening) { app in
            var settings = ServiceGroupConfiguration(
                services: [.init(service: app),
                           .init(service: DrainMarker(availability: availability, delay: configuration.drainDelay, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            settings.maximumGracefulShutdownDuration = configuration.drainDelay + configuration.drainTimeout
            settings.maximumCancellationDuration = .seconds(5)
            try await ServiceGroup(configuration: settings).run()
        }
    }

    private func withServer(onListening: @escaping @Sendable (Int) async -> Void,
                            _ body: (Application<RouterResponder<ServerRequestContext>>) async throws -> Void) async throws {
        let loading = Task { await loadModel() }
        defer {
            loading.cancel()
            hlsSessions.cancelAll()
        }
        let idle = configuration.idleTimeout.components, head = configuration.requestHeadTimeout.components
        let slowClientLimits = SlowClientGuard.Limits(
            headTimeout: .seconds(head.seconds) + .nanoseconds(head.attoseconds / 1_000_000_000),
            minimumBodyBytesPerSecond: configuration.minimumBodyBytesPerSecond)
        let logger = logger
        let app = Application(
            router: makeRouter(),
            server: .http1(configuration: .init(
                additionalChannelHandlers: [SlowClientGuard(limits: slowClientLimits, logger: logger)],
                idleTimeout: .seconds(idle.seconds) + .nanoseconds(idle.attoseconds / 1_000_000_000))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "chatterstream"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await body(app)
    }

    private func loadModel() async {
        if engine.isLoaded { availability.set(.ready); return }
        logger.info("loading the model; requests get 503 until it is ready")
        do {
            try await engine.loadModel()
            availability.set(.ready)
            logger.info("model loaded")
        } catch {
            availability.set(.failed(String(describing: error)))
            logger.error("the model failed to load: \(error)")
        }
    }

    func makeRouter() -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: RequestLogMiddleware(logger: logger, metrics: metrics))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: BearerAuthMiddleware(apiKey: configuration.apiKey))
        router.get("/health") { _, _ in self.health() }
        router.get("/ready") { _, _ in try await self.answering { try self.ready() } }
        router.get("/metrics") { _, _ in self.metricsText() }
        router.get("/v1/models") { _, _ in try await self.answering { try await self.models() } }
        router.get("/v1/info") { _, _ in try await self.answering { try await self.info() } }
        router.post("/v1/audio/speech") { request, context in
            try await self.answering { try await self.speech(request, context: context, defaultFormat: .mp3) }
        }
        router.post("/v1/speech") { request, context in
            try await self.answering { try await self.speech(request, context: context, defaultFormat: .wav) }
        }
        router.get("/v1/audio/voices") { _, _ in try await self.answering { try self.listVoices() } }
        router.post("/v1/audio/voices") { request, context in try await self.answering { try await self.uploadVoice(request, context: context) } }
        router.delete("/v1/audio/voices/:id") { _, context in
            try await self.answering { try self.deleteVoice(context.parameters.get("id") ?? "") }
        }
        router.post("/v1/hls") { request, context in try await self.answering { try await self.createHLS(request, context: context) } }
        router.get("/v1/hls/:id/:file") { _, context in
            try await self.answering {
                try self.hlsFile(id: context.parameters.get("id") ?? "", file: context.parameters.get("file") ?? "")
            }
        }
        router.delete("/v1/hls/:id") { _, context in
            try await self.answering {
                let id = context.parameters.get("id") ?? ""
                guard self.hlsSessions.remove(id) else { throw APIError(.notFound, "no HLS session '\(id)'") }
                return Response(status: .noContent)
            }
        }
        return router
    }

    /// Runs a handler and turns any error into its JSON answer (never Hummingbird's empty 500).
    private func answering(_ handler: () async throws -> Response) async throws -> Response {
        do {
            return try await handler()
        } catch {
            let answer = APIError(classifying: error)
            if answer.status == .internalServerError { logger.error("\(answer)") }
            return answer.response
        }
    }

    // MARK: - Operations

    private func health() -> Response {
        struct Health: Encodable { let status: String; let loaded: Bool }
        return json(Health(status: "ok", loaded: availability.current == .ready))
    }

    private func ready() throws -> Response {
        try availability.requireReady()
        struct Ready: Encodable { let status: String }
        return json(Ready(status: "ready"))
    }

    private func metricsText() -> Response {
        metrics.queueDepth(engine.queuedRuns)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.text())))
    }

    /// OpenAI's names for their speech models, which mean "the model this server runs".
    static let openAIModels = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]

    private func models() async throws -> Response {
        try availability.requireReady()
        let family = try await engine.info().family.rawValue
        struct Model: Encodable { let id: String; let object = "model"; let created = 0; let owned_by: String }
        struct List: Encodable { let object = "list"; let data: [Model] }
        return json(List(data: [Model(id: family, owned_by: "resemble-ai")]
                         + Self.openAIModels.map { Model(id: $0, owned_by: "chatterstream (alias of \(family))") }))
    }

    private func info() async throws -> Response {
        try availability.requireReady()
        let info = try await engine.info()
        struct InfoBody: Encodable { let family, device, precision, kv_cache_precision, s3gen_precision, watermark: String; let threads: Int }
        return json(InfoBody(family: info.family.rawValue, device: info.device.rawValue, precision: info.precision,
                             kv_cache_precision: info.kvCachePrecision.rawValue,
                             s3gen_precision: info.s3genPrecision.rawValue, watermark: info.watermark, threads: info.threads))
    }

    // MARK: - Speech

    /// A request's `model`: ours by family name, OpenAI's meaning the loaded one.
    private func checkModel(_ model: String?) async throws {
        guard let model, !Self.openAIModels.contains(model) else { return }
        let loaded = try await engine.info().family.rawValue
        guard model == loaded || model == "chatterstream" else {
            throw APIError(.badRequest, "model '\(model)' is not served here: this server runs \(loaded) (or name tts-1, tts-1-hd, gpt-4o-mini-tts)", param: "model")
        }
    }

    /// The voice a request names: a library id, "builtin" or an OpenAI name (the default voice unless
    /// the library defines it), or (only with `allowVoicePaths`) a regular file on the server. No other
    /// value touches the file system.
    func resolveVoice(_ name: String?) throws(APIError) -> (voice: Voice, isPath: Bool) {
        guard let name, !name.isEmpty else { return (configuration.defaultVoice, false) }
        if let voice = voices?.voice(name) { return (voice, false) }
        if name == "builtin" || name == "default" || VoiceLibrary.openAIVoices.contains(name.lowercased()) {
            return (configuration.defaultVoice, false)
        }
        if name.contains("/") || name.contains("\\") || name.hasPrefix(".") {
            guard configuration.allowVoicePaths else {
                throw APIError(.badRequest, "voice must be a voice id (GET /v1/audio/voices), \"builtin\" or an OpenAI voice name; this server does not take paths", param: "voice")
            }
            return (.file(try VoicePath.check(name)), true)
        }
        throw APIError(.notFound, "no voice '\(name)': see GET /v1/audio/voices", param: "voice")
    }

    /// What a voice error says when the voice was a server path: nothing of the file's content.
    private func sanitized(_ error: any Error, voice: String?, isPath: Bool) -> any Error {
        let answer = APIError(classifying: error)
        guard isPath, answer.param == "voice" else { return error }
        return APIError(.badRequest, "the voice file '\(voice ?? "")' is not a usable recording or conditionals file", param: "voice")
    }

    private func decodeSpeechRequest(_ request: inout Request, context: ServerRequestContext) async throws -> SpeechRequest {
        try requireJSON(request)
        let body = try await collect(&request, context: context, limit: configuration.maxRequestBytes)
        let speech = try SpeechRequest.decode(body, defaults: engine.options)
        if speech.input.allSatisfy(\.isWhitespace) {
            throw APIError(.badRequest, StreamingTTSError.emptyText.description, param: "input")
        }
        return speech
    }

    /// The first chunk of a run, cancelled if the client hangs up while it waits (in the queue or
    /// for T3), its errors as the request deserves them (a path voice's without the file's content).
    private func firstChunk(of cursor: ChunkCursor, context: ServerRequestContext, speech: SpeechRequest, isPath: Bool) async throws -> AudioChunk {
        do {
            guard let chunk = try await HangUpWatcher.watching(context.channel, cancel: { cursor.cancel() }, { try await cursor.next() })
            else { throw StreamingTTSError.cancelled }
            return chunk
        } catch {
            throw sanitized(error, voice: speech.voice, isPath: isPath)
        }
    }

    /// Starts the synthesis and waits for its first chunk before answering, so bad input still gets
    /// its 4xx; then streams the rest as it comes. A client that hangs up, before or after the first
    /// chunk, cancels its run (also one still waiting in the queue).
    private func speech(_ request: Request, context: ServerRequestContext, defaultFormat: AudioFormat) async throws -> Response {
        let started = ContinuousClock.now
        var request = request
        let speech = try await decodeSpeechRequest(&request, context: context)
        let format = speech.responseFormat ?? defaultFormat
        let (voice, isPath) = try resolveVoice(speech.voice)
        try availability.requireReady()
        try await checkModel(speech.model)
        if configuration.logText { logger.info("speech request text: \(speech.input)") }
        let cursor = ChunkCursor(engine.synthesize(speech.input, voice: voice, options: speech.options, encoding: format))
        metrics.queueDepth(engine.queuedRuns)
        let first = try await firstChunk(of: cursor, context: context, speech: speech, isPath: isPath)
        let firstByte = ContinuousClock.now - started
        let sse = speech.streamFormat == .sse
        var headers: HTTPFields = [.contentType: sse ? "text/event-stream" : format.mimeType, .cacheControl: "no-store"]
        if format == .pcm && !sse {
            headers[.audioEncoding] = "s16le"
            headers[.audioSampleRate] = String(first.sampleRate)
            headers[.audioChannels] = "1"
        }
        let logger = logger, metrics = metrics, channel = context.channel, inputCharacters = speech.input.count
        let writeTimeout = configuration.writeTimeout
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var samples = first.sampleCount
            var chunks = 1
            // A client that stops reading stalls each write once the socket buffers are full: past
            // `writeTimeout` the run is cancelled and the connection closed.
            let watchdog = WriteWatchdog(timeout: writeTimeout) {
                cursor.cancel()
                channel?.close(promise: nil)
            }
            func send(_ chunk: AudioChunk) async throws {
                guard !chunk.encoded.isEmpty else { return }
                watchdog.arm()
                defer { watchdog.disarm() }
                if sse {
                    let event = #"{"type":"speech.audio.delta","audio":"\#(chunk.encoded.base64EncodedString())"}"#
                    try await writer.write(ByteBuffer(string: "data: \(event)\n\n"))
                } else {
                    try await writer.write(ByteBuffer(bytes: chunk.encoded))
                }
            }
            try await HangUpWatcher.watching(channel, cancel: { cursor.cancel() }) {
                try await send(first)
                do {
                    while let chunk = try await cursor.next() {
                        samples += chunk.sampleCount
                        chunks += 1
                        try await send(chunk)
                    }
                } catch {
                    logger.error("synthesis failed mid-stream: \(error)")
                    guard sse else {
                        // The status is sent: ending without the last chunk of the chunked encoding is
                        // how the client learns the audio is incomplete.
                        throw error
                    }
                    let answer = APIError(classifying: error)
                    let detail = APIError.Body(error: .init(message: answer.message, type: answer.type, param: answer.param, code: answer.code))
                    let data = (try? JSONEncoder().encode(detail)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                    try await writer.write(ByteBuffer(string: "event: error\ndata: \(data)\n\n"))
                    try await writer.finish(nil)
                    return
                }
                if cursor.isCancelled { throw StreamingTTSError.cancelled }
                if sse {
                    let done = #"{"type":"speech.audio.done","usage":{"input_tokens":\#(inputCharacters),"output_tokens":\#(samples / 960),"total_tokens":\#(inputCharacters + samples / 960)}}"#
                    try await writer.write(ByteBuffer(string: "data: \(done)\n\n"))
                }
            }
            metrics.synthesis(timeToFirstByte: firstByte, elapsed: ContinuousClock.now - started,
                              audioSeconds: Double(samples) / Double(first.sampleRate), speed: Double(speech.options.speed), chunks: chunks)
            try await writer.finish(nil)
        })
    }

    // MARK: - Voices

    private func library() throws(APIError) -> VoiceLibrary {
        guard let voices else {
            throw APIError(.notFound, "this server has no voice library: start it with --voices DIR")
        }
        return voices
    }

    private func listVoices() throws -> Response {
        struct Listed: Encodable { let id, name: String; let created: Int; let object = "voice" }
        struct List: Encodable { let object = "list"; let data: [Listed]; let builtin: [String] }
        let entries = voices?.list() ?? []
        return json(List(data: entries.map { Listed(id: $0.id, name: $0.name, created: $0.created) },
                         builtin: ["builtin"] + VoiceLibrary.openAIVoices.sorted()))
    }

    /// `multipart/form-data` with `file` (a recording in any format we decode) and `name`; `id`
    /// optional (else made from the name). 201 with the stored voice.
    private func uploadVoice(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let voices = try library()
        try availability.requireReady()
        let contentType = request.headers[.contentType] ?? ""
        guard contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = contentType.split(separator: ";").lazy
                .map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { $0.lowercased().hasPrefix("boundary=") })
                .map({ String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) })
        else {
            throw APIError(.unsupportedMediaType, "upload a voice as multipart/form-data with a 'file' part (the recording) and a 'name'")
        }
        var request = request
        let body = try await collect(&request, context: context, limit: configuration.maxVoiceUploadBytes)
        struct Upload: Decodable { let file: Data; let name: String?; let id: String? }
        let upload: Upload
        do { upload = try FormDataDecoder().decode(Upload.self, from: [UInt8](body), boundary: boundary) } catch {
            throw APIError(.badRequest, "the upload needs a 'file' part with the recording (and a 'name'): \(error)", param: "file")
        }
        let name = upload.name ?? upload.id ?? "voice"
        let id = upload.id ?? Self.slug(name)
        guard VoiceLibrary.isValidID(id) else {
            throw APIError(.badRequest, "voice id '\(id)' must be 1-64 letters, digits, '-' or '_'", param: "id")
        }
        guard voices.voice(id) == nil else { throw APIError(.conflict, "voice '\(id)' exists: DELETE it first", param: "id") }
        // The recording goes to a private temporary file, is checked for its length, then analysed.
        let recording = FileManager.default.temporaryDirectory.appendingPathComponent("chatterstream-upload-\(UUID().uuidString)")
        try upload.file.write(to: recording)
        defer { try? FileManager.default.removeItem(at: recording) }
        let isTooLong: Bool
        do { isTooLong = try AudioFile.read(path: recording.path, maxSeconds: configuration.maxVoiceSeconds).isPartial } catch {
            throw APIError(.badRequest, "the uploaded file is not audio we can decode (WAV, FLAC, MP3, Ogg)", param: "file")
        }
        guard !isTooLong else {
            throw APIError(.badRequest, "the recording is longer than \(Int(configuration.maxVoiceSeconds)) s, the limit (10-20 s of clean speech is plenty)", param: "file")
        }
        let entry = try await voices.add(id: id, name: name) { destination in
            do { try await engine.saveVoice(fromRecording: recording, to: destination) } catch {
                throw sanitized(error, voice: name, isPath: true)
            }
        }
        struct Created: Encodable { let id, name: String; let created: Int; let object = "voice" }
        var response = json(Created(id: entry.id, name: entry.name, created: entry.created))
        response.status = .created
        return response
    }

    private func deleteVoice(_ id: String) throws -> Response {
        guard try library().remove(id) else { throw APIError(.notFound, "no voice '\(id)'", param: "voice") }
        return Response(status: .noContent)
    }

    static func slug(_ name: String) -> String {
        let kept = name.lowercased().map { $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII ? $0 : "-" }
        return String(String(kept).split(separator: "-").joined(separator: "-").prefix(64))
    }

    // MARK: - HLS

    /// Starts an HLS session once the first chunk proves the request good (so errors get their 4xx),
    /// and answers 201 with where its playlist grows.
    private func createHLS(_ request: Request, context: ServerRequestContext) async throws -> Response {
        var request = request
        let speech = try await decodeSpeechRequest(&request, context: context)
        let (voice, isPath) = try resolveVoice(speech.voice)
        try availability.requireReady()
        let segmenter = try HLSSegmenter(sampleRate: 24_000)
        let session = HLSSession(id: UUID().uuidString.lowercased(), emptyPlaylist: segmenter.playlist(segmentURI: HLSSession.segmentURI))
        try hlsSessions.insert(session)
        let cursor = ChunkCursor(engine.synthesize(speech.input, voice: voice, options: speech.options, encoding: nil))
        let first: AudioChunk
        do { first = try await firstChunk(of: cursor, context: context, speech: speech, isPath: isPath) } catch {
            hlsSessions.remove(session.id)
            throw error
        }
        session.start(cursor: cursor, firstChunk: first, segmenter: segmenter,
                      maxBytes: configuration.hlsMaxSessionBytes, maxSeconds: configuration.hlsMaxSessionSeconds)
        let playlist = "/v1/hls/\(session.id)/playlist.m3u8"
        struct Created: Encodable { let id, playlist: String }
        var response = json(Created(id: session.id, playlist: playlist))
        response.status = .created
        response.headers[.location] = playlist
        return response
    }

    private func hlsFile(id: String, file: String) throws -> Response {
        guard let session = hlsSessions.session(id) else {
            throw APIError(.notFound, "no HLS session '\(id)' (sessions are kept \(configuration.hlsSessionLifetime) after they end)")
        }
        if file == "playlist.m3u8" {
            if case let .failed(error, _) = session.phase { throw error }
            return Response(status: .ok, headers: [.contentType: HLSSegmenter.playlistMIMEType, .cacheControl: "no-cache"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: session.playlist)))
        }
        guard file.hasSuffix(".ts"), let index = Int(file.dropLast(3)), index >= 0 else {
            throw APIError(.notFound, "no file '\(file)' in an HLS session: there are playlist.m3u8 and <n>.ts")
        }
        guard let segment = session.segment(index) else {
            throw APIError(.notFound, "segment \(index) of HLS session '\(id)' does not exist (yet): see the playlist")
        }
        return Response(status: .ok, headers: [.contentType: HLSSegmenter.segmentMIMEType, .cacheControl: "max-age=600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: segment)))
    }

    // MARK: - Helpers

    /// JSON endpoints take `application/json` (or no content type, as curl's `--data-binary` sends);
    /// a form-encoded or other body is a 415 rather than a guess.
    private func requireJSON(_ request: Request) throws(APIError) {
        guard let type = request.headers[.contentType]?.split(separator: ";").first?
            .trimmingCharacters(in: .whitespaces).lowercased() else { return }
        guard type == "application/json" || type.hasSuffix("+json") else {
            throw APIError(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json), not \(type)")
        }
    }

    /// The request body, at most `limit` bytes, read as RFC 9110 asks of a server with a limit:
    ///
    /// - A declared `Content-Length` over the limit is a 413 at once, before a body byte is read. A
    ///   client that sent `Expect: 100-continue` (curl and URLSession do above 1 MiB) then never sends
    ///   the body, so the refusal costs no transfer; the answer says `Connection: close` because the
    ///   unread body leaves the connection unusable.
    /// - Otherwise such a client gets its `100 Continue` now. Without it, it sends only when its own
    ///   timer runs out (curl's: 1 s), a second added to every large voice upload, and a race with a
    ///   short idle timeout that closes the connection first.
    /// - A body that outgrows the limit as it arrives (chunked, or a length that lied) is a 413 too;
    ///   Hummingbird drains the rest before reading another request.
    ///
    /// Only the size is a 413: a connection lost mid-body is that error, not "too large".
    private func collect(_ request: inout Request, context: ServerRequestContext, limit: Int) async throws -> Data {
        let tooLarge = "the request body is larger than \(limit) bytes"
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw APIError(.contentTooLarge, tooLarge, closesConnection: true)
        }
        if request.headers[.expect]?.lowercased() == "100-continue", let channel = context.channel {
            try await channel.writeAndFlush(HTTPResponsePart.head(HTTPResponse(status: .continue)))
        }
        do {
            return Data(try await request.collectBody(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, tooLarge)
        }
    }

    private func json(_ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Fires `onTimeout` when a write stays pending (armed) longer than `timeout`. Armed once per chunk
/// written, so its timer must cost nothing once disarmed (`CancellableDeadline`).
final class WriteWatchdog: Sendable {
    private let timeout: Duration
    private let onTimeout: @Sendable () -> Void
    private let pending = Mutex<CancellableDeadline?>(nil)

    init(timeout: Duration, onTimeout: @escaping @Sendable () -> Void) {
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    func arm() {
        let deadline = CancellableDeadline(after: timeout, onTimeout)
        pending.withLock { $0?.cancel(); $0 = deadline }
    }

    func disarm() { pending.withLock { $0?.cancel(); $0 = nil } }
}

/// A configuration the server refuses to run with.
public struct ServerConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Marks the server not ready (503 on /ready) as soon as a drain begins, then holds the drain for
/// `delay` before the listener closes. The service group shuts services down in reverse order, one
/// after another, so the app (listed first) stops accepting only when this returns: without a
/// delay no new connection could ever see the 503.
struct DrainMarker: Service {
    let availability: ModelAvailability
    let delay: Duration
    let logger: Logger
    func run() async throws {
        try? await gracefulShutdown()
        availability.set(.draining)
        if delay > .zero {
            logger.info("draining: /ready answers 503; still accepting for \(delay)")
            try? await Task.sleep(for: delay)
        }
        logger.info("draining: no new connections; finishing the responses in flight")
    }
}

extension HTTPField.Name {
    /// What raw PCM bodies carry, since their content type cannot say it (see `AudioFormat.pcm`).
    static let audioEncoding = HTTPField.Name("X-Audio-Encoding")!
    static let audioSampleRate = HTTPField.Name("X-Audio-Sample-Rate")!
    static let audioChannels = HTTPField.Name("X-Audio-Channels")!
}
