import ArgumentParser
import Chatterstream
import ChatterstreamServer
import Foundation

/// `chatterstream serve`: the engine over HTTP until SIGINT/SIGTERM.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve speech over HTTP: OpenAI's POST /v1/audio/speech, a voice library, HLS.",
        discussion: """
            Endpoints: POST /v1/audio/speech, GET|POST /v1/audio/voices, DELETE /v1/audio/voices/<id>, \
            GET /v1/models, GET /health, GET /ready, GET /metrics, POST /v1/hls (see README, "Over HTTP"). \
            The model and synthesis options below are the defaults each request's JSON may override. \
            Binding anything but loopback needs --api-key (or CHATTERSTREAM_API_KEY) unless --insecure.
            Example: curl -sN localhost:8080/v1/audio/speech -H 'Content-Type: application/json' \
            -d '{"model":"tts-1","input":"Hello","voice":"alloy","response_format":"mp3"}' -o hello.mp3
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "Voice library directory (uploads are stored there; requests name voices by id).") var voices: String?
    @Flag(name: .customLong("allow-voice-paths"), help: "Let requests name a voice file on the server by path (local use only).")
    var allowVoicePaths = false
    @Option(name: .customLong("api-key"), help: "Bearer token required on every endpoint but /health (default: $CHATTERSTREAM_API_KEY).")
    var apiKey: String?
    @Flag(help: "Allow a non-loopback address without an API key.") var insecure = false
    @Option(name: .customLong("max-queued"), help: "Syntheses that may wait for their turn; beyond it requests get 429.")
    var maxQueued = 16
    @Option(name: .customLong("max-hls-sessions"), help: "HLS sessions kept at once.") var maxHLSSessions = 32
    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may stay silent before it is closed.") var idleTimeout = 30
    @Option(name: .customLong("request-timeout"), help: "Seconds a request's head may take to arrive (its body: as long again, plus a second per --min-body-rate bytes); slower clients are cut off.")
    var requestTimeout = 30
    @Option(name: .customLong("min-body-rate"), help: "Bytes per second a request body must at least arrive at (see --request-timeout).")
    var minBodyRate = 500
    @Option(name: .customLong("write-timeout"), help: "Seconds a response write may wait for a client that stopped reading.") var writeTimeout = 60
    @Option(name: .customLong("drain-timeout"), help: "Seconds in-flight responses may take to finish on SIGTERM.") var drainTimeout = 30
    @Option(name: .customLong("drain-delay"), help: "Seconds /ready answers 503 on SIGTERM while connections are still accepted (for a load balancer to notice).")
    var drainDelay = 0
    @Flag(name: .customLong("log-text"), help: "Log each request's text (off by default).") var logText = false
    @OptionGroup var model: ModelOptions
    @OptionGroup var synthesis: SynthesisArguments

    func validate() throws {
        for (flag, seconds) in [("--idle-timeout", idleTimeout), ("--request-timeout", requestTimeout),
                                ("--write-timeout", writeTimeout), ("--drain-timeout", drainTimeout)] where seconds <= 0 {
            throw ValidationError("\(flag) must be a positive number of seconds (got \(seconds))")
        }
        if drainDelay < 0 { throw ValidationError("--drain-delay must be 0 or more seconds (got \(drainDelay))") }
        if minBodyRate < 0 { throw ValidationError("--min-body-rate must be 0 (no minimum) or a number of bytes per second (got \(minBodyRate))") }
    }

    func run() async throws {
        MallocArenas.limit()  // before any thread: see MallocArenas for the measurement
        var settings = SpeechServer.Configuration()
        settings.host = host
        settings.port = port
        settings.defaultVoice = Voice(argument: synthesis.voice)
        settings.voicesDirectory = voices.map { URL(fileURLWithPath: $0) }
        settings.allowVoicePaths = allowVoicePaths
        settings.apiKey = apiKey ?? ProcessInfo.processInfo.environment["CHATTERSTREAM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        settings.insecure = insecure
        settings.hlsSessionLimit = maxHLSSessions
        settings.idleTimeout = .seconds(idleTimeout)
        settings.writeTimeout = .seconds(writeTimeout)
        settings.requestHeadTimeout = .seconds(requestTimeout)
        settings.minimumBodyBytesPerSecond = minBodyRate
        settings.drainTimeout = .seconds(drainTimeout)
        settings.drainDelay = .seconds(drainDelay)
        settings.logText = logText
        let server = try SpeechServer(engine: model.engine(options: synthesis.options, maxQueuedRuns: maxQueued), configuration: settings)
        let host = host
        try await server.runUntilSignalled { port in
            FileHandle.standardError.write(Data("chatterstream: listening on http://\(host):\(port)\n".utf8))
        }
    }
}
