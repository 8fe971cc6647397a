/// Errors of the T3 model's inputs (weights errors are `TensorError`s from the `WeightStore`).
public enum T3Error: Error, Equatable, CustomStringConvertible {
    /// More text tokens than the text position table allows (2048 for the real checkpoints).
    case textTooLong(count: Int, limit: Int)
    /// No text tokens at all.
    case emptyText
    /// A token id outside its vocabulary.
    case tokenOutOfRange(kind: String, token: Int, vocabularySize: Int)
    /// A speaker embedding whose size is not the model's `speakerEmbeddingSize`.
    case speakerEmbeddingSize(expected: Int, actual: Int)
    /// More prompt speech tokens than the speech position table has rows.
    case promptTooLong(count: Int, limit: Int)
    /// Prefill plus generated tokens exceed the backbone's positions (GPT-2's `wpe` table: 8196).
    case sequenceTooLong(prefill: Int, maxNewTokens: Int, limit: Int)
    /// A sampling or generation parameter outside its range.
    case invalidParameter(name: String, value: Double, reason: String)
    /// A `T3PrefixState` that does not belong to this model or voice (another model instance,
    /// another conditioning length, exaggeration or voice): using it would attend over the wrong keys.
    case prefixMismatch(reason: String)

    public var description: String {
        switch self {
        case let .textTooLong(count, limit): "text has \(count) tokens, more than the \(limit) the model accepts"
        case .emptyText: "text has no tokens"
        case let .tokenOutOfRange(kind, token, size): "\(kind) token \(token) outside 0..<\(size)"
        case let .speakerEmbeddingSize(expected, actual): "speaker embedding has \(actual) values, expected \(expected)"
        case let .promptTooLong(count, limit): "speech prompt has \(count) tokens, more than \(limit)"
        case let .sequenceTooLong(prefill, maxNewTokens, limit):
            "prefill of \(prefill) positions plus up to \(maxNewTokens) new tokens exceeds the model's \(limit) positions; shorten the text or lower max_new_tokens"
        case let .invalidParameter(name, value, reason): "\(name) = \(value): \(reason)"
        case let .prefixMismatch(reason): "T3 prefix state unusable here: \(reason)"
        }
    }
}
