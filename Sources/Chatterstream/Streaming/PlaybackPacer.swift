/// When a `ChunkStrategy.paced` stream pushes its next tokens through S3Gen.
///
/// Every push re-decodes the voice prompt (250 tokens for the built-in voices) and up to
/// `flowContextTokens` of left context before its new tokens, so the fewer the pushes, the less the
/// stream costs; but a listener must not run out of audio while a push is rendered. The pacer keeps a
/// playback clock (`playbackEnd`: when the audio sent so far will have been heard, counting from the
/// first chunk, and restarting after any stall), estimates what a push of the queued tokens would
/// take from the last push's seconds per decoded frame, and pushes only when waiting longer would
/// make that push finish after `playbackEnd`. Tokens keep arriving while it waits, so each push
/// carries as many as the listener's buffer allows: the chunks grow as the stream gets ahead.
///
/// A stream that is already late when a push becomes due (the push would end after `playbackEnd`)
/// cannot avoid a stall by pushing sooner: further small pushes would add their prompt and context
/// to a machine that is already behind. It stops pacing (`behind`) and pushes again only when
/// `bufferedTokens` have gathered or the utterance ends, which minimises the total time, and with it
/// how long the listener waits in all. On a 2-core machine that cannot stream Turbo in real time
/// this makes the 150-token utterance of the benchmarks two pushes (15 tokens, then the rest): 1.23×
/// one call's S3Gen work instead of 2.42× for fixed 25/75 chunks (BENCHMARKS.md).
///
/// Pure: the clock comes in as arguments, so the policy is tested without timing.
struct PlaybackPacer {
    /// Prompt tokens every push after the first decodes.
    let promptTokens: Int
    /// Most tokens of left context a push re-decodes (`flowContextTokens`).
    let contextTokens: Int
    /// Mel frames per token.
    let framesPerToken: Int
    /// Until a push has emitted audio there is no playback to pace by: pushes take this many tokens
    /// (`firstChunkTokens`), as the first did. A first chunk within the flow's lookahead and the
    /// vocoder's margin emits nothing; pushing every token after it would pay the prompt per token.
    let unpacedChunkTokens: Int
    /// Once behind, the most tokens gathered before a push (20 s: long utterances still stream, and
    /// the prompt and context a push re-decodes are 1.7× a push this size at most).
    var bufferedTokens = 500
    /// Spare time kept between a push's estimated end and `playbackEnd`, and the factor on its
    /// estimate: the T3 thread shares the cores with the push and the machine's speed drifts.
    var margin: Duration = .milliseconds(150)
    var estimateFactor = 1.25

    /// When the listener will have heard every sample emitted so far (nil before the first chunk).
    private(set) var playbackEnd: ContinuousClock.Instant?
    /// Seconds per mel frame decoded, measured on the last push.
    private(set) var secondsPerFrame: Double?
    /// Tokens pushed so far.
    private(set) var pushedTokens = 0
    /// The stream fell behind playback: no more pacing.
    private(set) var behind = false

    enum Decision: Equatable {
        /// Push every queued token now.
        case push
        /// Wait for another token, or until this instant (nil: for another token only).
        case wait(until: ContinuousClock.Instant?)
    }

    /// Mel frames the flow decodes for a push of `tokens` new tokens after the first push.
    func frames(forPushOf tokens: Int) -> Int {
        framesPerToken * (promptTokens + min(contextTokens, pushedTokens) + tokens)
    }

    /// What to do with `queued` tokens at `now`. A final chunk is pushed regardless (the caller's
    /// business): this decides the pushes before it.
    mutating func decide(queued: Int, now: ContinuousClock.Instant) -> Decision {
        guard queued > 0 else { return .wait(until: nil) }
        if behind { return queued >= bufferedTokens ? .push : .wait(until: nil) }
        guard let playbackEnd, let secondsPerFrame else { return queued >= unpacedChunkTokens ? .push : .wait(until: nil) }
        let estimate = Duration.seconds(secondsPerFrame * Double(frames(forPushOf: queued)) * estimateFactor)
        let startBy = playbackEnd - estimate - margin
        if now < startBy {
            // One more token raises the estimate by a frame's share only: wake for it, or at the
            // latest start time of what is queued now.
            return .wait(until: startBy)
        }
        if now + estimate > playbackEnd {
            behind = true
            return queued >= bufferedTokens ? .push : .wait(until: nil)
        }
        return .push
    }

    /// A push of `tokens` tokens decoded `frames` mel frames in `seconds` and ended at `now`,
    /// emitting `audioSeconds` of audio.
    mutating func pushed(tokens: Int, frames: Int, seconds: Double, audioSeconds: Double, now: ContinuousClock.Instant) {
        pushedTokens += tokens
        if frames > 0 { secondsPerFrame = seconds / Double(frames) }
        guard audioSeconds > 0 else { return }
        // A listener who ran out waits for this audio and resumes playing it now.
        let start = max(playbackEnd ?? now, now)
        playbackEnd = start + .seconds(audioSeconds)
    }
}
