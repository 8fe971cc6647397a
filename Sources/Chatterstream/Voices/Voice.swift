import Foundation

/// Whose voice a synthesis speaks with.
public enum Voice: Sendable, Hashable {
    /// The model's built-in voice (`conds.pt` of the checkpoint).
    case builtin
    /// A reference recording (WAV, FLAC, MP3, Ogg) to clone, or a conditionals file saved by
    /// chatterstream (`.safetensors`). Conditionals built from a recording are cached (LRU, keyed by
    /// path and modification time).
    case file(URL)

    /// `"builtin"` or a path.
    public init(argument: String) {
        self = argument == "builtin" ? .builtin : .file(URL(fileURLWithPath: argument))
    }
}
