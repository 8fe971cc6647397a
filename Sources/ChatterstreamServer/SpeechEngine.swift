import Chatterstream
import Foundation

/// What the server drives: a loaded-on-demand engine that turns text into a stream of audio chunks.
/// `StreamingTTS` is the real one; the protocol exists so tests can wrap it (e.g. to observe decode
/// steps) without the server knowing.
public protocol SpeechEngine: Sendable {
    var isLoaded: Bool { get }
    /// Loads the model (downloading it first when needed); a no-op once loaded.
    func loadModel() async throws
    func info() async throws -> StreamingTTS.Info
    /// The options a request starts from before its own fields override them.
    var options: SynthesisOptions { get }
    /// Runs waiting for their turn.
    var queuedRuns: Int { get }
    func synthesize(_ text: String, voice: Voice, options: SynthesisOptions?, encoding: AudioFormat?)
        -> AsyncThrowingStream<AudioChunk, Error>
    /// Builds a voice's conditionals from a recording and saves them to `destination`.
    func saveVoice(fromRecording recording: URL, to destination: URL) async throws
}

extension StreamingTTS: SpeechEngine {
    public func loadModel() async throws { try await load() }
}
