import ArgumentParser
import Chatterstream
import ChatterstreamServer
import Foundation

/// `chatterstream serve`: the engine over HTTP until SIGINT/SIGTERM.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve speech over HTTP: POST /v1/speech streams audio, POST /v1/hls makes an HLS playlist.",
        discussion: """
            Endpoints: GET /health, GET /v1/info, POST /v1/speech, POST /v1/hls, \
            GET /v1/hls/<id>/playlist.m3u8, GET /v1/hls/<id>/<n>.ts (see README, "Over HTTP"). \
            The model and synthesis options below are the defaults each request's JSON may override. \
            Voices are paths on the server, so keep the default loopback address unless every client \
            may read the server's audio files.
            Example: curl -sN localhost:8080/v1/speech -d '{"text":"Hello","format":"pcm"}' | aplay -f S16_LE -r 24000 -c 1
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @OptionGroup var model: ModelOptions
    @OptionGroup var synthesis: SynthesisOptions

    func run() async throws {
        var settings = SpeechServer.Configuration()
        settings.host = host
        settings.port = port
        settings.defaultVoice = Voice(argument: synthesis.voice)
        let server = SpeechServer(engine: model.engine(config: synthesis.config), configuration: settings)
        let host = host
        try await server.runUntilSignalled { port in
            FileHandle.standardError.write(Data("chatterstream: listening on http://\(host):\(port)\n".utf8))
        }
    }
}
