import Foundation

/// The most work one synthesis request may ask of the engine, each limit checked before the work
/// it bounds (README "Limits"). Requests beyond one get `SynthesisLimitExceeded`, never a crash or
/// a silently shortened result. The defaults are far above what a normal request needs.
public struct SynthesisLimits: Sendable, Equatable {
    /// Characters of text per request (the text is split into pieces of `maxCharactersPerPiece`).
    public var maxTextCharacters = 20_000
    /// Text pieces per request.
    public var maxPieces = 200
    /// Speech tokens generated per request, all pieces together (25 per second: 30,000 is 20 min).
    /// Each piece is also bounded by `max_new_tokens` and the model (`T3Config.maxGeneratedTokens`).
    public var maxSpeechTokens = 30_000
    /// Wall-clock seconds one request may live, from when `synthesize` accepts it: waiting in the
    /// queue, preparing the voice and generating all count. At the deadline the stream ends with
    /// this limit's error, whether the request is still queued or running (the run also checks it
    /// every decode step and every rendered chunk, and stops).
    public var maxWallSeconds: Double = 900
    /// Bytes of a reference recording (checked before it is decoded).
    public var maxReferenceBytes = 100 << 20
    /// Seconds of a reference recording that are decoded and analysed: the rest of a longer one is
    /// never read (`ConditionalsBuilder.maximumReferenceSeconds`, which voice cloning uses).
    public var maxReferenceSeconds: Double { 60 }

    public init() {}

    /// The defaults above.
    public static let standard = SynthesisLimits()
}

/// A request asked for more than a `SynthesisLimits` allows.
public struct SynthesisLimitExceeded: Error, Equatable, CustomStringConvertible {
    /// The limit's name (`maxTextCharacters` …).
    public var limit: String
    /// What the request asked for (or reached), and the most allowed.
    public var value: Double
    public var maximum: Double
    /// What to do about it.
    public var advice: String

    public init(limit: String, value: Double, maximum: Double, advice: String) {
        self.limit = limit
        self.value = value
        self.maximum = maximum
        self.advice = advice
    }

    /// The request used its whole wall time (`SynthesisLimits.maxWallSeconds`), queued or running.
    static func wallTime(_ maximum: Double) -> SynthesisLimitExceeded {
        SynthesisLimitExceeded(limit: "maxWallSeconds", value: maximum, maximum: maximum,
                               advice: "the request was stopped after waiting and running for that long; send shorter text, or retry when the engine is less busy")
    }

    public var description: String {
        "the request exceeds the engine's \(limit) limit (\(String(format: "%g", value)) > \(String(format: "%g", maximum))): \(advice)"
    }
}
