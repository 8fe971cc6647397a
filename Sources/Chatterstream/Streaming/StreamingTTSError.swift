import Foundation

/// What can go wrong in a synthesis, each with a message a user can act on.
public enum StreamingTTSError: Error, Equatable, CustomStringConvertible {
    /// Empty or whitespace-only text.
    case emptyText
    /// A `SynthesisOptions` field is out of range (`field` as the wire names it, e.g. `max_tokens`).
    case invalidOption(field: String, reason: String)
    /// The engine already holds `limit` queued runs (`StreamingTTS.maxQueuedRuns`): retry later.
    case queueFull(limit: Int)
    /// A text piece tokenises to more tokens than the model's text position table holds.
    case textTooLong(piece: Int, tokens: Int, limit: Int)
    /// The requested device is not available in this build or on this machine.
    case deviceUnavailable(String)
    /// The voice file does not exist.
    case voiceNotFound(path: String)
    /// The voice could not be turned into conditionals.
    case voiceUnusable(path: String, reason: String)
    /// The model directory or family cannot be loaded.
    case modelUnusable(String)
    /// The stream was cancelled by its consumer.
    case cancelled

    public var description: String {
        switch self {
        case .emptyText:
            "the text is empty (or only whitespace): give at least one word to speak"
        case let .invalidOption(field, reason):
            "\(field) \(reason)"
        case let .queueFull(limit):
            "the engine is busy: \(limit) syntheses are already waiting; retry shortly"
        case let .textTooLong(piece, tokens, limit):
            "text piece \(piece) is \(tokens) tokens, more than the model's \(limit); lower max_characters_per_piece"
        case let .deviceUnavailable(reason):
            "device unavailable: \(reason)"
        case let .voiceNotFound(path):
            "voice file not found: \(path)"
        case let .voiceUnusable(path, reason):
            "cannot use \(path) as a voice: \(reason)"
        case let .modelUnusable(reason):
            "cannot load the model: \(reason)"
        case .cancelled:
            "the synthesis was cancelled"
        }
    }
}
