/// Why a tokenizer could not be loaded. Every case names the file.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The file (or the model directory's `tokenizer.json`) does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is not valid JSON, or a required field is missing or has the wrong type.
    case corrupt(path: String, reason: String)
    /// The file asks for a feature this implementation does not have (so it would tokenise wrongly).
    case unsupported(path: String, feature: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read tokenizer file (\(reason))"
        case let .corrupt(path, reason): return "\(path): corrupt tokenizer file: \(reason)"
        case let .unsupported(path, feature): return "\(path): unsupported tokenizer feature: \(feature)"
        }
    }
}
