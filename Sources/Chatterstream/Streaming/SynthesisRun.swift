import ChatterAudio
import ChatterModels
import ChatterTensor
import Foundation
import Synchronization

/// Cancels one synthesis from any thread: T3 stops before its next decode step, the vocoder
/// before its next chunk.
final class SynthesisCancellation: Sendable {
    let t3 = T3Cancellation()
    func cancel() { t3.cancel() }
    var isCancelled: Bool { t3.isCancelled }
}

/// Figures of one run (logged at debug level).
struct SynthesisStatistics: Sendable {
    var decodeSteps = 0
    var speechTokens = 0
    var samples = 0
    var chunks = 0
    /// Text pieces whose T3 prefill reused a cached conditioning prefix, and pieces that built one.
    var prefixesReused = 0
    var prefixesBuilt = 0
    /// The work S3Gen's pushes did (`S3GenWork`), and how many pushes (flow calls) that was.
    var s3genWork = S3GenWork()
    var s3genCalls: Int { s3genWork.flow.calls }
}

/// One synthesis, run synchronously: T3 on the calling thread, S3Gen + post-processing on a second
/// thread, so T3 generates chunk n+1 while chunk n is rendered. The ops' thread pool serialises
/// the two threads' parallel loops, so they share the cores rather than oversubscribe them.
struct SynthesisRun {
    let models: SpeechModels
    let config: ResolvedSynthesisOptions
    let seed: UInt64
    let cancellation: SynthesisCancellation
    /// Encoding attached to the chunks (`AudioChunk.encoded`), if any.
    var encoding: AudioFormat?
    /// When the request was accepted: its wall-time limit counts from here (queue wait included).
    var started = ContinuousClock.now
    /// Called from the vocoder thread, in order.
    let emit: @Sendable (AudioChunk) -> Void
    /// Called after each decode step with the total so far (tests observe cancellation latency).
    var onDecodeStep: (@Sendable (Int) -> Void)?
    /// Conditioning prefixes of recent voices; nil runs every prefill in full.
    var prefixes: T3PrefixCache?
    /// Bounds on the run's speech tokens and wall time.
    var limits = SynthesisLimits.standard
    /// Throws once the run has used its wall time.
    func checkWallTime() throws {
        let seconds = Self.seconds(ContinuousClock.now - started)
        if seconds > limits.maxWallSeconds {
            throw SynthesisLimitExceeded.wallTime(limits.maxWallSeconds)
        }
    }

    /// Seeds of the three random streams, derived so that none repeats another's numbers.
    var samplingSeed: UInt64 { SplitMix64.mix(seed ^ 0x5333_4733) }
    var flowSeed: UInt64 { SplitMix64.mix(seed ^ 0x464C_4F57) }
    var drawSeed: UInt64 { SplitMix64.mix(seed ^ 0x4849_4654) }

    /// Splits and tokenises `text`, checking every piece before any work starts.
    static func textPieces(_ text: String, models: SpeechModels, config: SynthesisOptions,
                           limits: SynthesisLimits = .standard) throws -> [[Int]] {
        let characters = text.unicodeScalars.count
        guard characters <= limits.maxTextCharacters else {
            throw SynthesisLimitExceeded(limit: "maxTextCharacters", value: Double(characters), maximum: Double(limits.maxTextCharacters),
                                         advice: "split the text over several requests")
        }
        let pieces = TextSplitter(maxCharacters: config.maxCharactersPerPiece).pieces(text)
        guard !pieces.isEmpty else { throw StreamingTTSError.emptyText }
        guard pieces.count <= limits.maxPieces else {
            throw SynthesisLimitExceeded(limit: "maxPieces", value: Double(pieces.count), maximum: Double(limits.maxPieces),
                                         advice: "split the text over several requests, or raise maxCharactersPerPiece")
        }
        return try pieces.enumerated().map { index, piece in
            let tokens = try models.frontEnd.t3Input(for: piece, language: config.language)
            guard tokens.count <= models.speech.maxTextTokens else {
                throw StreamingTTSError.textTooLong(piece: index, tokens: tokens.count, limit: models.speech.maxTextTokens)
            }
            return tokens
        }
    }

    func run(textPieces: [[Int]], voice: Conditionals) throws -> SynthesisStatistics {
        let queue = ChunkQueue()
        let renderer = Thread { [self] in
            let result = Result { try render(queue: queue, voice: voice) }
            if case .failure = result { cancellation.cancel() }  // T3 need not go on
            queue.finishRendering(result: result)
        }
        renderer.stackSize = 8 << 20
        renderer.start()
        var steps = 0, tokens = 0, prefixesReused = 0, prefixesBuilt = 0
        var generationError: Error?
        do {
            var chunker = TokenChunker(config: config.chunking)
            // A model that drops its final token's audio (`finalTokenTrimmed`) gets the last token
            // in the final chunk, so the cut falls in the final push's samples (see `render`).
            var heldBack: Int?
            func add(_ token: Int) {
                var token = token
                if models.finalTokenTrimmed {
                    guard let previous = heldBack else { heldBack = token; return }
                    heldBack = token
                    token = previous
                }
                if let chunk = chunker.add(token) {
                    queue.put(chunk, final: false)
                    // The first chunk is what the listener waits for: T3 yields the cores until it
                    // is rendered instead of racing ahead on tokens nobody needs yet.
                    if chunker.chunksEmitted == 1 && !config.chunking.oneShot { queue.waitUntilRendered(chunks: 1) }
                }
            }
            for (index, text) in textPieces.enumerated() {
                if cancellation.isCancelled { break }
                let stream = try models.speech.tokens(conditioning: voice, textTokens: text, parameters: config.sampling,
                                                      seed: SplitMix64.mix(samplingSeed &+ UInt64(index)),
                                                      cancellation: cancellation.t3, prefixes: prefixes)
                switch stream.prefixUse {
                case .reused: prefixesReused += 1
                case .built: prefixesBuilt += 1
                case .none: break
                }
                while let token = stream.nextSpeechToken() {
                    tokens += 1
                    if tokens > limits.maxSpeechTokens {
                        throw SynthesisLimitExceeded(limit: "maxSpeechTokens", value: Double(tokens), maximum: Double(limits.maxSpeechTokens),
                                                     advice: "the synthesis was stopped; send shorter text or lower max_tokens")
                    }
                    try checkWallTime()
                    onDecodeStep?(steps + stream.steps)
                    add(token)
                }
                steps += stream.steps
                if models.trailingSilenceTokens > 0 {
                    for _ in 0..<models.trailingSilenceTokens { add(TokenChunker.silenceToken) }
                    tokens += models.trailingSilenceTokens
                }
            }
            queue.put(chunker.flush() + (heldBack.map { [$0] } ?? []), final: true)
        } catch {
            generationError = error
            cancellation.cancel()  // the renderer need not go on
        }
        queue.close()
        let rendered = queue.waitForRendering()
        if let generationError { throw generationError }
        var statistics = try rendered.get()
        if cancellation.isCancelled { throw StreamingTTSError.cancelled }
        statistics.decodeSteps = steps
        statistics.speechTokens = tokens
        statistics.prefixesReused = prefixesReused
        statistics.prefixesBuilt = prefixesBuilt
        return statistics
    }

    /// The vocoder thread: token chunks → S3Gen stream → watermark → int16 chunks, each chunk
    /// rendered as soon as T3 hands it over.
    private func render(queue: ChunkQueue, voice: Conditionals) throws -> SynthesisStatistics {
        var s3gen = S3GenStream(s3gen: models.s3gen, reference: voice.gen, steps: config.chunking.flowSteps,
                                noiseSeed: flowSeed, drawSeed: drawSeed, maxContextTokens: config.chunking.flowContextTokens,
                                maxPromptTokens: config.chunking.flowPromptTokens == 0 ? nil : config.chunking.flowPromptTokens)
        var watermark = models.watermarker.map { WatermarkStream(watermarker: $0, sampleRate: models.s3gen.sampleRate) }
        var statistics = SynthesisStatistics()
        var tokensSeen = 0, s3genSamples = 0
        let encoder = try encoding?.makeStreamingEncoder(sampleRate: models.s3gen.sampleRate)
        let rate = config.chunking.speed == 1 ? nil : try SpeechRateChanger(speed: config.chunking.speed, sampleRate: models.s3gen.sampleRate)
        var pacer = config.chunking.strategy == .paced && !config.chunking.oneShot
            ? PlaybackPacer(promptTokens: voice.gen.promptTokens.count, contextTokens: config.chunking.flowContextTokens,
                            framesPerToken: models.s3gen.flow.tokenMelRatio, unpacedChunkTokens: config.chunking.firstChunkTokens)
            : nil
        var pushes = 0
        // The first chunk is T3's `firstChunkTokens`; a paced stream's later pushes take every token
        // queued once its pacer says so.
        func next() -> (tokens: [Int], final: Bool)? {
            guard pacer != nil && pushes > 0 else { return queue.take() }
            return queue.takeCoalesced { pacer!.decide(queued: $0, now: $1) }
        }
        while let (chunk, final) = next() {
            if cancellation.isCancelled { return statistics }
            try checkWallTime()
            let pushStarted = ContinuousClock.now
            let framesBefore = s3gen.work.flow.encoderFrames
            pushes += 1
            tokensSeen += chunk.count
            // No speech token at all (T3 stopped at once): the stream is a single empty chunk.
            var samples = tokensSeen > 0 ? try s3gen.push(chunk, final: final) : []
            if final && models.finalTokenTrimmed && tokensSeen > 0 {
                // Upstream 3f35dfc: `wav[: max(1, n − 1) · S3GEN_SR / S3_TOKEN_RATE]` on S3Gen's output,
                // before the watermark. The last token came in this final chunk (held back in `run`)
                // and no push emits audio past the tokens it has seen, so everything before this push
                // lies within the kept length: cutting here leaves the stream exactly the one-shot
                // path's audio (a one-shot run is this code with a single, final, chunk).
                let keep = max(1, tokensSeen - 1) * models.s3gen.samplesPerToken
                samples = Array(samples.prefix(max(0, keep - s3genSamples)))
            }
            s3genSamples += samples.count
            if watermark != nil { samples = try watermark!.push(samples, final: final) }
            if let rate { samples = rate.process(samples) + (final ? rate.finish() : []) }
            if !samples.isEmpty || final {
                let pcm = Self.pcm16(samples)
                var encoded = Data()
                if let encoder {
                    encoded = try encoder.encode(pcm16LittleEndian: pcm)
                    if final { encoded += try encoder.finalize() }
                }
                emit(AudioChunk(pcm: pcm, sampleRate: models.s3gen.sampleRate, isFinal: final,
                                chunkIndex: statistics.chunks, encoded: encoded))
                statistics.chunks += 1
                statistics.samples += samples.count
            }
            statistics.s3genWork = s3gen.work
            let now = ContinuousClock.now
            pacer?.pushed(tokens: chunk.count, frames: s3gen.work.flow.encoderFrames - framesBefore,
                          seconds: Self.seconds(now - pushStarted),
                          audioSeconds: Double(samples.count) / Double(models.s3gen.sampleRate), now: now)
            queue.markRendered()
            if final { break }
        }
        return statistics
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Clamps to [−1, 1] and converts as upstream and the Python package do (`(x·32767).to(int16)`,
    /// truncating toward zero), little-endian.
    static func pcm16(_ samples: [Float]) -> Data {
        var data = Data(count: samples.count * 2)
        data.withUnsafeMutableBytes { raw in
            for (i, x) in samples.enumerated() {
                let clamped = x.isNaN ? 0 : min(max(x, -1), 1)
                raw.storeBytes(of: Int16(clamped * 32767).littleEndian, toByteOffset: 2 * i, as: Int16.self)
            }
        }
        return data
    }
}

/// Token chunks from the T3 thread to the vocoder thread, and the vocoder's result back.
final class ChunkQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [(tokens: [Int], final: Bool)] = []
    private var closed = false
    private var result: Result<SynthesisStatistics, Error>?
    private var rendered = 0

    func put(_ chunk: [Int], final: Bool) {
        condition.withLock { chunks.append((chunk, final)); condition.broadcast() }
    }

    func close() {
        condition.withLock { closed = true; condition.broadcast() }
    }

    /// The next chunk, or nil once closed and drained.
    func take() -> (tokens: [Int], final: Bool)? {
        condition.withLock {
            while chunks.isEmpty && !closed { condition.wait() }
            return chunks.isEmpty ? nil : chunks.removeFirst()
        }
    }

    /// Every queued token merged into one chunk once `decide` (given the queued token count and the
    /// time) says push, or at once when a final chunk is queued or the queue is closed; nil once closed
    /// and drained. T3 queues a paced stream's tokens one at a time, so each arrival re-asks.
    func takeCoalesced(_ decide: (Int, ContinuousClock.Instant) -> PlaybackPacer.Decision) -> (tokens: [Int], final: Bool)? {
        condition.withLock {
            while true {
                if chunks.isEmpty && closed { return nil }
                let queued = chunks.reduce(0) { $0 + $1.tokens.count }
                var push = closed || chunks.contains { $0.final }
                if !push {
                    switch decide(queued, .now) {
                    case .push: push = true
                    case .wait(until: let deadline?):
                        _ = condition.wait(until: Date(timeIntervalSinceNow: max(0, SynthesisRun.seconds(deadline - .now))))
                    case .wait(until: nil): condition.wait()
                    }
                }
                if push {
                    defer { chunks = [] }
                    return (chunks.flatMap(\.tokens), chunks.contains { $0.final })
                }
            }
        }
    }

    /// The renderer finished a chunk.
    func markRendered() {
        condition.withLock { rendered += 1; condition.broadcast() }
    }

    /// Blocks until `chunks` chunks are rendered or rendering ended (failed, cancelled, done).
    func waitUntilRendered(chunks: Int) {
        condition.withLock {
            while rendered < chunks && result == nil { condition.wait() }
        }
    }

    func finishRendering(result: Result<SynthesisStatistics, Error>) {
        condition.withLock { self.result = result; condition.broadcast() }
    }

    func waitForRendering() -> Result<SynthesisStatistics, Error> {
        condition.withLock {
            while result == nil { condition.wait() }
            return result!
        }
    }
}
