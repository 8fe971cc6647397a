/// Why the S3Gen flow refused its inputs.
public enum FlowError: Error, Equatable, CustomStringConvertible {
    /// No speech tokens to decode.
    case noTokens
    /// A token id outside the vocabulary (`index` into the prompt + speech sequence, prompt first).
    case tokenOutOfRange(index: Int, token: Int, vocabulary: Int)
    /// The prompt mel must have exactly `tokenMelRatio` frames per prompt token.
    case promptLengthMismatch(promptTokens: Int, promptFrames: Int, expectedFrames: Int)
    /// A reference tensor has the wrong shape.
    case referenceShape(what: String, expected: [Int], actual: [Int])
    /// A reference tensor holds NaN or ±∞.
    case nonFiniteReference(what: String)
    /// Fewer tokens than the lookahead when not finalizing leaves nothing to emit.
    case nothingToEmit(tokens: Int, lookahead: Int)
    /// `FlowStream.push` after the final push.
    case streamFinished

    public var description: String {
        switch self {
        case .noTokens: "the S3Gen flow needs at least one speech token"
        case let .tokenOutOfRange(index, token, vocabulary):
            "speech token \(token) at position \(index) is outside the vocabulary [0, \(vocabulary)); strip special tokens first"
        case let .promptLengthMismatch(tokens, frames, expected):
            "the prompt mel has \(frames) frames but its \(tokens) prompt tokens need \(expected)"
        case let .referenceShape(what, expected, actual): "reference \(what) has shape \(actual), expected \(expected)"
        case let .nonFiniteReference(what): "reference \(what) contains NaN or infinity"
        case .streamFinished: "this FlowStream has had its final push; start a new stream for more tokens"
        case let .nothingToEmit(tokens, lookahead):
            "\(tokens) new tokens with finalize = false leave no frames to emit (the last \(lookahead) tokens are held back)"
        }
    }
}
