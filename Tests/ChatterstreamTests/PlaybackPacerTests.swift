import ChatterModels
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
@testable import Chatterstream

/// `PlaybackPacer`'s policy with the clock given by hand, and a paced run end to end.
@Suite struct PlaybackPacerTests {
    /// Built-in-voice proportions: 250 prompt tokens, 100 tokens of context, 2 mel frames a token.
    static func pacer() -> PlaybackPacer {
        PlaybackPacer(promptTokens: 250, contextTokens: 100, framesPerToken: 2, unpacedChunkTokens: 15)
    }

    static let t0 = ContinuousClock.now

    static func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .seconds(seconds) }

    /// Instants equal to within a microsecond (the pacer's arithmetic is in floating-point seconds).
    static func same(_ a: ContinuousClock.Instant?, _ b: ContinuousClock.Instant) -> Bool {
        guard let a else { return false }
        return abs(SynthesisRun.seconds(a - b)) < 1e-6
    }

    static func waits(_ decision: PlaybackPacer.Decision, until instant: ContinuousClock.Instant) -> Bool {
        if case .wait(until: let deadline?) = decision { return same(deadline, instant) }
        return false
    }

    /// Before any audio there is no playback to pace by: pushes of the first chunk's size.
    @Test func pushesFirstChunkSizesUntilAudioFlows() {
        var pacer = Self.pacer()
        #expect(pacer.decide(queued: 0, now: Self.at(0)) == .wait(until: nil), "nothing queued: nothing to push")
        #expect(pacer.decide(queued: 14, now: Self.at(0)) == .wait(until: nil))
        #expect(pacer.decide(queued: 15, now: Self.at(0)) == .push)
        // A push that emitted nothing (all within the lookahead and the vocoder's margin) changes nothing.
        pacer.pushed(tokens: 15, frames: 30, seconds: 0.1, audioSeconds: 0, now: Self.at(1))
        #expect(pacer.playbackEnd == nil)
        #expect(pacer.decide(queued: 3, now: Self.at(1)) == .wait(until: nil))
        #expect(pacer.decide(queued: 15, now: Self.at(1)) == .push)
    }

    @Test func framesCountThePromptAndTheContextSoFar() {
        var pacer = Self.pacer()
        #expect(pacer.frames(forPushOf: 10) == 2 * (250 + 0 + 10))
        pacer.pushed(tokens: 15, frames: 190, seconds: 0.5, audioSeconds: 0.6, now: Self.at(1))
        #expect(pacer.frames(forPushOf: 10) == 2 * (250 + 15 + 10))
        pacer.pushed(tokens: 200, frames: 900, seconds: 1, audioSeconds: 8, now: Self.at(2))
        #expect(pacer.frames(forPushOf: 10) == 2 * (250 + 100 + 10), "context bounded by flowContextTokens")
    }

    /// Ahead of playback it waits until the last moment the queued tokens can still be rendered in
    /// time, then pushes them all.
    @Test func waitsWhileAheadAndPushesJustInTime() {
        var pacer = Self.pacer()
        // First push: 15 tokens, 190 frames in 0.19 s (1 ms a frame), 0.6 s of audio, ended at 1 s.
        pacer.pushed(tokens: 15, frames: 190, seconds: 0.19, audioSeconds: 0.6, now: Self.at(1))
        #expect(Self.same(pacer.playbackEnd, Self.at(1.6)))
        // 10 queued: (250 + 15 + 10) · 2 = 550 frames → 0.55 s × 1.25 = 0.6875 s, + 0.15 s margin.
        let estimate = Duration.seconds(0.001 * 550 * 1.25)
        let startBy = Self.at(1.6) - estimate - .milliseconds(150)
        #expect(Self.waits(pacer.decide(queued: 10, now: Self.at(0.5)), until: startBy))
        #expect(!pacer.behind)
        // Past that instant the push still fits before playback ends: push.
        #expect(pacer.decide(queued: 10, now: startBy + .milliseconds(1)) == .push)
        #expect(!pacer.behind)
        // The next audio extends the clock from where playback will end, not from now.
        pacer.pushed(tokens: 10, frames: 550, seconds: 0.55, audioSeconds: 0.4, now: Self.at(1.5))
        #expect(Self.same(pacer.playbackEnd, Self.at(2.0)))
    }

    /// Behind playback a push cannot avoid the stall: it gathers tokens instead, pushing again only
    /// at `bufferedTokens` (or when the final chunk comes, which the queue handles), and stays so.
    @Test func stopsPacingOnceBehind() {
        var pacer = Self.pacer()
        pacer.bufferedTokens = 40
        // A slow machine: 10 ms a frame; 0.6 s of audio ended at 1 s.
        pacer.pushed(tokens: 15, frames: 190, seconds: 1.9, audioSeconds: 0.6, now: Self.at(1))
        // 5 queued at 1.1 s: (250 + 15 + 5) · 2 · 10 ms · 1.25 = 6.75 s > 0.5 s of audio left.
        #expect(pacer.decide(queued: 5, now: Self.at(1.1)) == .wait(until: nil))
        #expect(pacer.behind)
        #expect(pacer.decide(queued: 39, now: Self.at(3)) == .wait(until: nil))
        #expect(pacer.decide(queued: 40, now: Self.at(3)) == .push)
        // Still behind after a push that emitted plenty of audio: no pacing for the rest.
        pacer.pushed(tokens: 40, frames: 610, seconds: 0.1, audioSeconds: 100, now: Self.at(3.2))
        #expect(pacer.decide(queued: 5, now: Self.at(3.3)) == .wait(until: nil))
    }

    /// A listener who ran out of audio resumes with the next chunk when it arrives.
    @Test func playbackRestartsAfterAStall() {
        var pacer = Self.pacer()
        pacer.pushed(tokens: 15, frames: 190, seconds: 0.2, audioSeconds: 0.6, now: Self.at(1))
        pacer.pushed(tokens: 30, frames: 600, seconds: 2, audioSeconds: 1.2, now: Self.at(3))
        #expect(Self.same(pacer.playbackEnd, Self.at(4.2)), "played out at 1.6 s; the next 1.2 s play from 3 s")
        pacer.pushed(tokens: 3, frames: 560, seconds: 0.5, audioSeconds: 0, now: Self.at(3.5))
        #expect(Self.same(pacer.playbackEnd, Self.at(4.2)), "a push without audio leaves the clock alone")
    }

    /// A stream simulated on the pacer's own clock: T3 makes a token every `tokenSeconds`, a push
    /// costs `secondsPerFrame` per decoded frame (T3 keeps going meanwhile), a token is 40 ms of
    /// audio, and a listener plays from the first audio on. Returns the push sizes and how long the
    /// listener waited after the first audio in all.
    static func simulate(tokenSeconds: Double, secondsPerFrame: Double, tokens total: Int,
                         bufferedTokens: Int = 500) -> (pushes: [Int], stall: Double) {
        var pacer = Self.pacer()
        pacer.bufferedTokens = bufferedTokens
        var t = 15 * tokenSeconds, pushed = 0, pushes: [Int] = [], stall = 0.0
        var playbackEnd: Double?
        func produced(by time: Double) -> Int { min(total, Int((time / tokenSeconds + 1e-6).rounded(.down))) }
        func push(_ n: Int) {
            let frames = pushes.isEmpty ? 2 * (80 + n) : pacer.frames(forPushOf: n)
            let seconds = secondsPerFrame * Double(frames)
            t += seconds
            if let end = playbackEnd, t > end { stall += t - end }
            playbackEnd = max(playbackEnd ?? t, t) + Double(n) * 0.04
            pacer.pushed(tokens: n, frames: frames, seconds: seconds, audioSeconds: Double(n) * 0.04, now: Self.at(t))
            pushes.append(n)
            pushed += n
        }
        push(15)
        while pushed < total {
            let available = produced(by: t) - pushed
            if produced(by: t) == total { push(available); break }  // the final chunk
            let nextToken = Double(produced(by: t) + 1) * tokenSeconds
            switch pacer.decide(queued: available, now: Self.at(t)) {
            case .push: push(available)
            case .wait(until: let deadline?): t = max(t + 1e-6, min(nextToken, SynthesisRun.seconds(deadline - Self.t0)))
            case .wait(until: nil): t = nextToken
            }
        }
        return (pushes, stall)
    }

    /// Ahead of playback (T3 at 4x real time, pushes of ~0.2 s): the listener never waits after the
    /// first audio, and the pushes grow rather than come every few tokens.
    @Test func simulatedFastMachineNeverStalls() {
        let (pushes, stall) = Self.simulate(tokenSeconds: 0.01, secondsPerFrame: 0.0002, tokens: 400)
        print("paced, simulated fast machine: pushes \(pushes), stall \(stall) s")
        #expect(stall == 0)
        #expect(pushes.reduce(0, +) == 400)
        #expect(pushes.count >= 3 && pushes.count <= 12, "\(pushes)")
        #expect(pushes.dropFirst().dropLast().allSatisfy { $0 >= 15 }, "no push of a few tokens: \(pushes)")
    }

    /// Behind playback (each push ~4 s): the first chunk, then the rest in one push; a long
    /// utterance in pushes of `bufferedTokens`.
    @Test func simulatedSlowMachinePushesAsLittleAsItCan() {
        let short = Self.simulate(tokenSeconds: 0.02, secondsPerFrame: 0.005, tokens: 150)
        #expect(short.pushes == [15, 135], "\(short.pushes)")
        let long = Self.simulate(tokenSeconds: 0.02, secondsPerFrame: 0.005, tokens: 1200, bufferedTokens: 500)
        print("paced, simulated slow machine: 150 tokens \(short.pushes), 1200 tokens \(long.pushes)")
        #expect(long.pushes.reduce(0, +) == 1200)
        #expect(long.pushes.count == 4 && long.pushes.dropFirst().dropLast().allSatisfy { $0 >= 500 }, "\(long.pushes)")
    }

    /// The default strategy end to end on the tiny model: whatever pushes the pacer chose, every
    /// token is rendered once, the stream has one S3Gen render's length, and later pushes decode the
    /// whole prompt.
    @Test func pacedRunHasTheOneShotLength() throws {
        var config = TinySpeechModels.config
        config.strategy = .paced
        config.firstChunkTokens = 5
        let text = "Hello there, this is a paced streaming test."
        let chunks = Mutex<[AudioChunk]>([])
        let run = SynthesisRun(models: TinySpeechModels.shared, config: config.resolved(for: .chatterbox), seed: config.seed!,
                               cancellation: SynthesisCancellation(), emit: { chunk in chunks.withLock { $0.append(chunk) } })
        let statistics = try run.run(textPieces: try SynthesisRun.textPieces(text, models: TinySpeechModels.shared, config: config),
                                     voice: TinySpeechModels.shared.builtinVoice)
        let emitted = chunks.withLock { $0 }
        let tokens = try StreamingTTSTests.speechTokens(text, config: config)
        let oneShot = try S3GenStream.render(s3gen: TinySpeechModels.shared.s3gen, tokens: tokens,
                                             reference: TinySpeechModels.shared.builtinVoice.gen,
                                             noiseSeed: run.flowSeed, drawSeed: run.drawSeed)
        let expected = AudioChunk(pcm: SynthesisRun.pcm16(oneShot), sampleRate: 24_000, isFinal: true, chunkIndex: 0).samples
        let streamed = StreamingTTSTests.samples(emitted)
        // The wave SNR is printed only: this fixture's vocoder is chaotic in the mel (S3GenStreamTests).
        print("paced run (tiny model): \(tokens.count) tokens, \(statistics.s3genCalls) S3Gen calls, chunks \(emitted.map(\.sampleCount)), SNR against one render \(StreamingTTSTests.snr(expected, streamed)) dB")
        #expect(statistics.speechTokens == tokens.count)
        #expect(streamed.count == expected.count && streamed.count == tokens.count * 960)
        #expect(emitted.map(\.chunkIndex) == Array(0..<emitted.count))
        #expect(emitted.filter(\.isFinal).count == 1 && emitted.last!.isFinal)
        #expect(statistics.s3genCalls >= 2 && statistics.s3genCalls <= tokens.count - config.firstChunkTokens + 1)
    }
}

/// The KV cache an engine gets when none is asked for: the reference f32 beside f32 weights, f16
/// beside reduced-precision ones.
@Suite struct AutomaticKVCacheTests {
    @Test func followsTheT3WeightsDType() {
        #expect(SpeechModels.automaticKVCachePrecision(t3Weights: "F32") == .f32)
        for dtype in ["BF16", "F16", "Q8_0", "q8_0"] {
            #expect(SpeechModels.automaticKVCachePrecision(t3Weights: dtype) == .f16, "\(dtype)")
        }
        #expect(StreamingTTS().kvCachePrecision == nil, "automatic unless asked")
    }
}

