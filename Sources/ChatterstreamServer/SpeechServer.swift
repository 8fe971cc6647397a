import ChatterAudio
import Chatterstream
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle

/// The engine over HTTP (Hummingbird):
///
/// - `GET /health` → `{"status":"ok","loaded":bool}`
/// - `GET /v1/info` → family, device, precision, watermark, threads
/// - `POST /v1/speech` (`SpeechRequest` JSON) → the audio, streamed as it is synthesised
/// - `POST /v1/hls` → 201 `{"id","playlist"}`; `GET /v1/hls/<id>/playlist.m3u8`, `GET /v1/hls/<id>/<n>.ts`
///
/// Errors are JSON (`APIError`). The model is loaded in the background when the server starts;
/// requests that need it get 503 until it is ready.
public final class SpeechServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port (reported to `run`'s `onListening`).
        public var port = 8080
        /// The voice of requests that name none.
        public var defaultVoice = Voice.builtin
        /// Largest request body accepted (413 above).
        public var maxRequestBytes = 1 << 20
        /// HLS sessions kept at once, running or ended.
        public var hlsSessionLimit = 32
        /// How long an ended HLS session's playlist and segments stay available.
        public var hlsSessionLifetime = Duration.seconds(600)

        public init() {}
    }

    public let engine: any SpeechEngine
    public let configuration: Configuration
    let logger: Logger
    let availability = ModelAvailability()
    let hlsSessions: HLSSessionStore

    public init(engine: some SpeechEngine, configuration: Configuration = Configuration(),
                logger: Logger = Logger(label: "chatterstream.server")) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
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

    /// Serves until SIGINT or SIGTERM, then finishes the responses in flight (the CLI).
    public func runUntilSignalled(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await withServer(onListening: onListening) { app in try await app.runService() }
    }

    private func withServer(onListening: @escaping @Sendable (Int) async -> Void,
                            _ body: (Application<RouterResponder<BasicRequestContext>>) async throws -> Void) async throws {
        let loading = Task { await loadModel() }
        defer {
            loading.cancel()
            hlsSessions.cancelAll()
        }
        let app = Application(
            router: makeRouter(),
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

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.get("/health") { _, _ in self.health() }
        router.get("/v1/info") { _, _ in try await self.answering { try await self.info() } }
        router.post("/v1/speech") { request, _ in try await self.answering { try await self.speech(request) } }
        router.post("/v1/hls") { request, _ in try await self.answering { try await self.createHLS(request) } }
        router.get("/v1/hls/:id/:file") { _, context in
            try await self.answering {
                try self.hlsFile(id: context.parameters.get("id") ?? "", file: context.parameters.get("file") ?? "")
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

    // MARK: - Handlers

    private func health() -> Response {
        struct Health: Encodable { let status: String; let loaded: Bool }
        return json(Health(status: "ok", loaded: availability.current == .ready))
    }

    private func info() async throws -> Response {
        try availability.requireReady()
        let info = try await engine.info()
        struct InfoBody: Encodable { let family, device, precision, watermark: String; let threads: Int }
        return json(InfoBody(family: info.family.rawValue, device: info.device.rawValue, precision: info.precision,
                             watermark: info.watermark, threads: info.threads))
    }

    /// Starts the synthesis and waits for its first chunk before answering, so bad input still gets
    /// its 4xx; then streams the rest as it comes. The body runs with cancellation on inbound close:
    /// a client that hangs up cancels the writer's task, which ends the stream, which cancels the run.
    private func speech(_ request: Request) async throws -> Response {
        var request = request
        let body = try await SpeechRequest.decode(collect(&request))
        let format = try SpeechFormat(requested: body.format ?? SpeechFormat.wav.rawValue)
        let voice = try body.validatedVoice(default: configuration.defaultVoice)
        try availability.requireReady()
        let cursor = ChunkCursor(engine.synthesize(body.text, voice: voice, config: body.config(over: engine.defaultConfig),
                                                   encoding: format.chunkEncoding))
        guard let first = try await cursor.next() else { throw StreamingTTSError.cancelled }
        var headers: HTTPFields = [.contentType: format.contentType, .cacheControl: "no-store"]
        if format == .pcm {
            headers[.audioEncoding] = "s16le"
            headers[.audioSampleRate] = String(first.sampleRate)
            headers[.audioChannels] = "1"
        }
        let streamingRequest = request
        let logger = logger
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await streamingRequest.body.consumeWithCancellationOnInboundClose { _ in
                let preamble = format.preamble(sampleRate: first.sampleRate)
                try await writer.write(ByteBuffer(bytes: preamble + format.payload(of: first)))
                do {
                    while let chunk = try await cursor.next() {
                        let bytes = format.payload(of: chunk)
                        if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
                    }
                } catch {
                    // The status is sent: ending without the last chunk of the chunked encoding is how
                    // the client learns the audio is incomplete.
                    logger.error("synthesis failed mid-stream: \(error)")
                    throw error
                }
            }
            try await writer.finish(nil)
        })
    }

    /// Starts an HLS session once the first chunk proves the request good (so errors get their 4xx),
    /// and answers 201 with where its playlist grows.
    private func createHLS(_ request: Request) async throws -> Response {
        var request = request
        let body = try await SpeechRequest.decode(collect(&request))
        let voice = try body.validatedVoice(default: configuration.defaultVoice)
        try availability.requireReady()
        let segmenter = try HLSSegmenter(sampleRate: 24_000)
        let session = HLSSession(id: UUID().uuidString.lowercased(), emptyPlaylist: segmenter.playlist(segmentURI: HLSSession.segmentURI))
        try hlsSessions.insert(session)
        let cursor = ChunkCursor(engine.synthesize(body.text, voice: voice, config: body.config(over: engine.defaultConfig), encoding: nil))
        let first: AudioChunk
        do {
            guard let chunk = try await cursor.next() else { throw StreamingTTSError.cancelled }
            first = chunk
        } catch {
            hlsSessions.remove(session.id)
            throw error
        }
        session.start(cursor: cursor, firstChunk: first, segmenter: segmenter)
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

    private func collect(_ request: inout Request) async throws -> Data {
        let limit = configuration.maxRequestBytes
        do {
            return Data(try await request.collectBody(upTo: limit).readableBytesView)
        } catch {
            throw APIError(.contentTooLarge, "the request body is larger than \(limit) bytes")
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

extension HTTPField.Name {
    /// What raw PCM bodies carry, since their content type cannot say it (see `SpeechFormat.pcm`).
    static let audioEncoding = HTTPField.Name("X-Audio-Encoding")!
    static let audioSampleRate = HTTPField.Name("X-Audio-Sample-Rate")!
    static let audioChannels = HTTPField.Name("X-Audio-Channels")!
}
