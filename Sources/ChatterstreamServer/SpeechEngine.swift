import Chatterstream

/// What the server drives: a loaded-on-demand engine that turns text into a stream of audio chunks.
/// `StreamingTTS` is the real one; the protocol exists so tests can wrap it (e.g. to observe decode
/// steps) without the server knowing.
public protocol SpeechEngine: Sendable {
    var isLoaded: Bool { get }
    /// Loads the model (downloading it first when needed); a no-op once loaded.
    func loadModel() async throws
    func info() async throws -> StreamingTTS.Info
    /// The settings a request starts from before its own fields override them.
    var defaultConfig: StreamConfig { get }
    func synthesize(_ text: String, voice: Voice, config: StreamConfig?, encoding: ChunkEncoding?)
        -> AsyncThrowingStream<AudioChunk, Error>
}

extension StreamingTTS: SpeechEngine {
    public func loadModel() async throws { try await load() }
    public var defaultConfig: StreamConfig { config }
}
