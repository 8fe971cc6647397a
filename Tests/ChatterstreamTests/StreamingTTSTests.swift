import ChatterAudio
import ChatterTensor
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import ChatterModels
@testable import Chatterstream

/// The streaming engine end to end on the tiny fixture models (TinySpeechModels).
@Suite(.serialized) struct StreamingTTSTests {
    static var models: SpeechModels { TinySpeechModels.shared }

    static func collect(_ stream: AsyncThrowingStream<AudioChunk, Error>) async throws -> [AudioChunk] {
        var chunks: [AudioChunk] = []
        for try await chunk in stream { chunks.append(chunk) }
        return chunks
    }

    static func samples(_ chunks: [AudioChunk]) -> [Int16] { chunks.flatMap(\.samples) }

    /// The speech tokens a run with `config` generates for `text` (T3 alone, same seeds).
    static func speechTokens(_ text: String, config: SynthesisOptions) throws -> [Int] {
        let resolved = config.resolved(for: .chatterbox)
        let run = SynthesisRun(models: models, config: resolved, seed: config.seed!, cancellation: SynthesisCancellation(), emit: { _ in })
        var tokens: [Int] = []
        for (index, piece) in try SynthesisRun.textPieces(text, models: models, config: config).enumerated() {
            let stream = try models.speech.tokens(conditioning: models.builtinVoice, textTokens: piece, parameters: resolved.sampling,
                                                  seed: SplitMix64.mix(run.samplingSeed &+ UInt64(index)), cancellation: T3Cancellation(),
                                                  prefixes: nil)
            while let token = stream.nextSpeechToken() { tokens.append(token) }
        }
        return tokens
    }

    static func snr(_ reference: [Int16], _ estimate: [Int16]) -> Double {
        var s = 0.0, e = 0.0
        for (a, b) in zip(reference, estimate) { s += Double(a) * Double(a); e += Double(Int(a) - Int(b)) * Double(Int(a) - Int(b)) }
        return 10 * log10(max(s, 1e-30) / max(e, 1e-30))
    }

    @Test func chunksAreOrderedAndTheStreamHasTheOneShotLength() async throws {
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        let text = "Hello there, this is a streaming test."
        let chunks = try await Self.collect(tts.synthesize(text))
        #expect(chunks.count >= 3, "expected several chunks, got \(chunks.count)")
        #expect(chunks.map(\.chunkIndex) == Array(0..<chunks.count))
        #expect(chunks.filter(\.isFinal).count == 1 && chunks.last!.isFinal)
        #expect(chunks.allSatisfy { $0.sampleRate == 24_000 })
        #expect(chunks.dropLast().allSatisfy { $0.sampleCount > 0 })

        let tokens = try Self.speechTokens(text, config: TinySpeechModels.config)
        let streamed = Self.samples(chunks)
        #expect(streamed.count == tokens.count * 960, "\(streamed.count) samples for \(tokens.count) tokens")
        // One call over the same tokens with the same noise and draws, converted the same way.
        let run = SynthesisRun(models: Self.models, config: TinySpeechModels.config.resolved(for: .chatterbox), seed: 7,
                               cancellation: SynthesisCancellation(), emit: { _ in })
        let oneShot = try S3GenStream.render(s3gen: Self.models.s3gen, tokens: tokens, reference: Self.models.builtinVoice.gen,
                                             noiseSeed: run.flowSeed, drawSeed: run.drawSeed)
        let oneShotPCM = AudioChunk(pcm: SynthesisRun.pcm16(oneShot), sampleRate: 24_000, isFinal: true, chunkIndex: 0).samples
        #expect(oneShotPCM.count == streamed.count)
        print("streamed vs one-shot (tiny random model, chunks \(chunks.map(\.sampleCount))): \(streamed.count) = \(oneShotPCM.count) samples, SNR \(Self.snr(oneShotPCM, streamed)) dB")
    }

    /// `oneShot` (`say` to a file): one S3Gen call over every token, so the audio is exactly one
    /// `S3GenStream.render` over them and the run does none of streaming's repeated work.
    @Test func oneShotRunsOneS3GenCallAndEqualsTheOneShotRender() throws {
        var config = TinySpeechModels.config
        config.oneShot = true
        let text = "Hello there, this is a one-shot test."
        let chunks = Mutex<[AudioChunk]>([])
        let run = SynthesisRun(models: Self.models, config: config.resolved(for: .chatterbox), seed: config.seed!,
                               cancellation: SynthesisCancellation(), emit: { chunk in chunks.withLock { $0.append(chunk) } })
        let statistics = try run.run(textPieces: try SynthesisRun.textPieces(text, models: Self.models, config: config),
                                     voice: Self.models.builtinVoice)
        let tokens = try Self.speechTokens(text, config: config)
        let oneShot = try S3GenStream.renderCounted(s3gen: Self.models.s3gen, tokens: tokens, reference: Self.models.builtinVoice.gen,
                                                    noiseSeed: run.flowSeed, drawSeed: run.drawSeed)
        let expected = AudioChunk(pcm: SynthesisRun.pcm16(oneShot.samples), sampleRate: 24_000, isFinal: true, chunkIndex: 0).samples
        let emitted = chunks.withLock { $0 }
        print("one-shot run: \(tokens.count) tokens, \(statistics.s3genCalls) S3Gen call(s), \(emitted.count) chunk(s), work \(statistics.s3genWork)")
        #expect(statistics.s3genCalls == 1)
        #expect(statistics.s3genWork == oneShot.work, "the run's S3Gen work is one render's")
        #expect(emitted.count == 1 && emitted[0].isFinal)
        #expect(Self.samples(emitted) == expected, "one-shot run differs from one render over the same tokens")

        // The streamed run of the same text pays the tax: more calls, more work.
        var streamedConfig = config
        streamedConfig.oneShot = false
        let streamedRun = SynthesisRun(models: Self.models, config: streamedConfig.resolved(for: .chatterbox), seed: config.seed!,
                                       cancellation: SynthesisCancellation(), emit: { _ in })
        let streamed = try streamedRun.run(textPieces: try SynthesisRun.textPieces(text, models: Self.models, config: config),
                                           voice: Self.models.builtinVoice)
        print("streamed run: \(streamed.s3genCalls) S3Gen calls, work \(streamed.s3genWork)")
        #expect(streamed.s3genCalls > 1)
        #expect(streamed.s3genWork.flow.estimatorFrameSteps > oneShot.work.flow.estimatorFrameSteps)
    }

    /// `flowSteps` reaches the solver (1 step: other audio, same length, half the estimator work);
    /// out of range is a typed error naming the field.
    @Test func flowStepsOptionReachesTheSolverAndIsChecked() async throws {
        var config = TinySpeechModels.config
        config.oneShot = true
        let text = "Steps."
        func render(_ steps: Int?) throws -> (samples: [Int16], statistics: SynthesisStatistics) {
            var c = config
            c.flowSteps = steps
            let chunks = Mutex<[AudioChunk]>([])
            let run = SynthesisRun(models: Self.models, config: c.resolved(for: .chatterbox), seed: c.seed!,
                                   cancellation: SynthesisCancellation(), emit: { chunk in chunks.withLock { $0.append(chunk) } })
            let statistics = try run.run(textPieces: try SynthesisRun.textPieces(text, models: Self.models, config: c),
                                         voice: Self.models.builtinVoice)
            return (Self.samples(chunks.withLock { $0 }), statistics)
        }
        let defaultSteps = try render(nil), explicit = try render(Self.models.s3gen.flow.defaultSteps), one = try render(1)
        #expect(defaultSteps.samples == explicit.samples, "nil must mean the model's default step count")
        #expect(one.samples.count == defaultSteps.samples.count)
        #expect(one.samples != defaultSteps.samples)
        #expect(one.statistics.s3genWork.flow.estimatorFrameSteps * Self.models.s3gen.flow.defaultSteps
                == defaultSteps.statistics.s3genWork.flow.estimatorFrameSteps)
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        var badPrompt = TinySpeechModels.config
        badPrompt.flowPromptTokens = 5
        #expect(throws: StreamingTTSError.invalidOption(field: "flow_prompt_tokens", reason: "must be 0 (the whole prompt) or at least 10 (got 5)")) {
            try badPrompt.validate(for: .chatterbox)
        }
        for steps in [0, -1, 33] {
            var bad = TinySpeechModels.config
            bad.flowSteps = steps
            await #expect(throws: StreamingTTSError.self) { _ = try await Self.collect(tts.synthesize("Hi.", options: bad)) }
            #expect(throws: StreamingTTSError.invalidOption(field: "flow_steps",
                                                            reason: "must be in 1...32 (got \(steps); upstream runs 2 meanflow / 10 standard steps)")) {
                try bad.validate(for: .chatterbox)
            }
        }
    }

    @Test func attachedOggOpusEncodingDecodesToTheStreamsLength() async throws {
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        let chunks = try await Self.collect(tts.synthesize("Encoded as it streams.", encoding: .opus))
        #expect(chunks.allSatisfy { !$0.encoded.isEmpty })
        let file = chunks.reduce(Data()) { $0 + $1.encoded }
        let decoded = try OggOpusDecoder.decode(file)
        print("Ogg Opus over \(chunks.count) chunks: \(file.count) bytes, \(decoded.count) samples decoded for \(Self.samples(chunks).count) streamed")
        #expect(decoded.count == Self.samples(chunks).count)
    }

    @Test func sameSeedSameAudioOtherSeedOtherAudio() async throws {
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        let a = Self.samples(try await Self.collect(tts.synthesize("Same seed, same audio.")))
        let b = Self.samples(try await Self.collect(tts.synthesize("Same seed, same audio.")))
        var other = TinySpeechModels.config
        other.seed = 8
        let c = Self.samples(try await Self.collect(tts.synthesize("Same seed, same audio.", options: other)))
        #expect(a == b)
        #expect(a != c)
    }

    @Test func badInputIsATypedError() async throws {
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        for text in ["", "   \n\t "] {
            await #expect(throws: StreamingTTSError.emptyText) { _ = try await Self.collect(tts.synthesize(text)) }
        }
        var bad = TinySpeechModels.config
        bad.firstChunkTokens = 0
        await #expect(throws: StreamingTTSError.self) { _ = try await Self.collect(tts.synthesize("Hi.", options: bad)) }
        var hot = TinySpeechModels.config
        hot.temperature = -1
        await #expect(throws: T3Error.self) { _ = try await Self.collect(tts.synthesize("Hi.", options: hot)) }
        // A sentence longer than the tiny T3's 62-token text window, unsplit: refused before any work.
        let long = String(repeating: "word ", count: 30) + "end."
        let count = try Self.models.frontEnd.t3Input(for: long).count
        await #expect(throws: StreamingTTSError.textTooLong(piece: 0, tokens: count, limit: 62)) {
            _ = try await Self.collect(tts.synthesize(long))
        }
        await #expect(throws: StreamingTTSError.voiceNotFound(path: "/nonexistent/voice.wav")) {
            _ = try await Self.collect(tts.synthesize("Hi.", voice: .file(URL(fileURLWithPath: "/nonexistent/voice.wav"))))
        }
        // The engine still works afterwards.
        #expect(try await !Self.collect(tts.synthesize("Still fine.")).isEmpty)
    }

    @Test func longTextIsSplitAndSpokenAsOneStream() async throws {
        var config = TinySpeechModels.config
        config.maxCharactersPerPiece = 40
        config.maxTokens = 20
        let tts = StreamingTTS(models: Self.models, options: config)
        let text = String(repeating: "word ", count: 30) + "end. And a second sentence here."
        let pieces = try SynthesisRun.textPieces(text, models: Self.models, config: config)
        #expect(pieces.count >= 4)
        let chunks = try await Self.collect(tts.synthesize(text))
        let tokens = try Self.speechTokens(text, config: config)
        #expect(Self.samples(chunks).count == tokens.count * 960)
        #expect(chunks.filter(\.isFinal).count == 1)
    }

    @Test func eightConcurrentCallsCompleteUnmixed() async throws {
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        let texts = (0..<8).map { "Caller number \($0) speaks." }
        func config(_ i: Int) -> SynthesisOptions { var c = TinySpeechModels.config; c.seed = UInt64(100 + i); c.maxTokens = 30; return c }
        var sequential: [[Int16]] = []
        for i in 0..<8 { sequential.append(Self.samples(try await Self.collect(tts.synthesize(texts[i], options: config(i))))) }
        let concurrent = try await withThrowingTaskGroup(of: (Int, [Int16]).self) { group in
            for i in 0..<8 {
                group.addTask { (i, Self.samples(try await Self.collect(tts.synthesize(texts[i], options: config(i))))) }
            }
            var out = [[Int16]](repeating: [], count: 8)
            for try await (i, samples) in group { out[i] = samples }
            return out
        }
        for i in 0..<8 {
            #expect(!concurrent[i].isEmpty)
            #expect(concurrent[i] == sequential[i], "call \(i) differs from the same call made alone")
        }
    }

    @Test func cancellingStopsWithinOneDecodeStepAndTheEngineGoesOn() async throws {
        var config = TinySpeechModels.config
        config.maxTokens = 58  // the tiny T3's speech window
        config.firstChunkTokens = 4
        let tts = StreamingTTS(models: Self.models, options: config)
        let steps = Mutex<(total: Int, atCancel: Int?)>((0, nil))
        // T3 is slowed to 20 ms a step (the tiny model decodes far faster than it renders) so that
        // the first chunk arrives while it is still generating.
        let stream = tts.synthesize("Cancel me after the first chunk please.", voice: .builtin, options: config) { n in
            steps.withLock { $0.total = n }
            Thread.sleep(forTimeInterval: 0.02)
        }
        // The consuming task cancels itself after the first chunk with audio: its pending `next()`
        // ends the stream, whose onTermination cancels the run.
        let consumer = Task {
            var received = 0
            for try await chunk in stream where chunk.sampleCount > 0 {
                received += 1
                if received == 1 {
                    steps.withLock { $0.atCancel = $0.total }
                    withUnsafeCurrentTask { $0?.cancel() }
                }
            }
            return received
        }
        let received = try await consumer.value
        #expect(received == 1)
        // The next call waits for the cancelled run to end (runs are serialised), then works.
        let after = try await Self.collect(tts.synthesize("A new stream works.", voice: .builtin, options: TinySpeechModels.config))
        #expect(after.last?.isFinal == true)
        let (total, atCancel) = steps.withLock { ($0.total, $0.atCancel!) }
        print("cancelled at decode step \(atCancel), generation stopped at step \(total) (the uncancelled run would take up to \(config.maxTokens!))")
        #expect(atCancel < config.maxTokens! - 5, "the first chunk came only after T3 finished: nothing to cancel")
        #expect(total - atCancel <= 1, "ran \(total - atCancel) decode steps after cancellation")
    }

    @Test func voiceFilesAreCachedUntilTheyChange() async throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("voice.safetensors")
        func save() throws { try Self.models.builtinVoice.write(to: url) }
        try save()
        let tts = StreamingTTS(models: Self.models, options: TinySpeechModels.config)
        let fromFile = Self.samples(try await Self.collect(tts.synthesize("Voice from a file.", voice: .file(url))))
        let builtin = Self.samples(try await Self.collect(tts.synthesize("Voice from a file.")))
        #expect(fromFile == builtin, "the saved built-in voice speaks as the built-in voice")
        _ = try await Self.collect(tts.synthesize("Again.", voice: .file(url)))
        #expect(tts.voiceCacheBuilds == 1, "a second use is served from the cache")
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: url.path)
        _ = try await Self.collect(tts.synthesize("Changed.", voice: .file(url)))
        #expect(tts.voiceCacheBuilds == 2, "a modified file is analysed again")
        try Data("not a tensor file".utf8).write(to: dir.url.appendingPathComponent("bad.safetensors"))
        await #expect(throws: StreamingTTSError.self) {
            _ = try await Self.collect(tts.synthesize("Hi.", voice: .file(dir.url.appendingPathComponent("bad.safetensors"))))
        }
    }
}

/// A recording as the voice goes through the model's `prepare_conditionals` once per file version,
/// with the run's exaggeration; the builder's own parity is ConditionalsTests'.
@Suite struct VoiceCloningPlumbingTests {
    @Test func recordingsAreClonedOnceAndTheirErrorsSurface() async throws {
        let calls = Mutex<[Float]>([])
        var models = TinySpeechModels.shared
        let builtin = models.builtinVoice
        models.cloneVoice = { url, exaggeration in
            calls.withLock { $0.append(exaggeration) }
            if url.lastPathComponent == "silence.wav" { throw ConditionalsError.silentReference(path: url.path) }
            return builtin
        }
        let dir = try TemporaryDirectory()
        let speech = dir.url.appendingPathComponent("speech.wav"), silence = dir.url.appendingPathComponent("silence.wav")
        try WAVFile.write([Float](repeating: 0.1, count: 24_000), sampleRate: 24_000, to: speech.path)
        try WAVFile.write([Float](repeating: 0, count: 24_000), sampleRate: 24_000, to: silence.path)
        var config = TinySpeechModels.config
        config.exaggeration = 0.7
        let tts = StreamingTTS(models: models, options: config)
        let cloned = try await StreamingTTSTests.collect(tts.synthesize("Cloned.", voice: .file(speech)))
        let again = try await StreamingTTSTests.collect(tts.synthesize("Cloned.", voice: .file(speech)))
        #expect(StreamingTTSTests.samples(cloned) == StreamingTTSTests.samples(again))
        #expect(calls.withLock { $0 } == [0.7], "analysed once, with the run's exaggeration")
        await #expect(throws: ConditionalsError.silentReference(path: silence.path)) {
            _ = try await StreamingTTSTests.collect(tts.synthesize("Hi.", voice: .file(silence)))
        }
        var bare = models
        bare.cloneVoice = nil
        await #expect(throws: StreamingTTSError.self) {
            // The test's config: the default max length is beyond the tiny model's, which is refused first.
            _ = try await StreamingTTSTests.collect(StreamingTTS(models: bare, options: config).synthesize("Hi.", voice: .file(speech)))
        }
    }
}

@Suite struct TextSplitterTests {
    @Test func splitsAtSentencesWithinTheLimitAndKeepsEveryWord() {
        let splitter = TextSplitter(maxCharacters: 40)
        let text = "First sentence. Second one is a bit longer than that! Third? A very long sentence without any stop that goes on and on, with a clause, and more words"
        let pieces = splitter.pieces(text)
        #expect(pieces.allSatisfy { $0.count <= 40 }, "\(pieces)")
        #expect(pieces.joined(separator: " ").split(separator: " ") == text.split(separator: " "))
        #expect(splitter.pieces("  \n ").isEmpty)
        #expect(TextSplitter(maxCharacters: 300).pieces("One. Two.") == ["One. Two."])
        #expect(TextSplitter.sentences("He said \"stop.\" Then left… Done") == ["He said \"stop.\"", "Then left…", "Done"])
        let unbroken = String(repeating: "x", count: 95)
        #expect(TextSplitter(maxCharacters: 40).pieces(unbroken).map(\.count) == [40, 40, 15])
    }
}

@Suite struct TokenChunkerTests {
    @Test func adaptiveAndSentenceAligned() {
        var config = SynthesisOptions()
        config.strategy = .adaptive
        config.firstChunkTokens = 3
        config.chunkTokens = 5
        var chunker = TokenChunker(config: config)
        var chunks: [[Int]] = []
        for t in 0..<14 { if let c = chunker.add(t) { chunks.append(c) } }
        chunks.append(chunker.flush())
        #expect(chunks == [[0, 1, 2], [3, 4, 5, 6, 7], [8, 9, 10, 11, 12], [13]])
        config.strategy = .sentenceAligned
        var aligned = TokenChunker(config: config)
        var out: [[Int]] = []
        for t in [1, 4299, 2, 3, 4299, 5, 6, 7, 8, 9] { if let c = aligned.add(t) { out.append(c) } }
        #expect(out == [[1, 4299, 2], [3, 4299, 5, 6, 7]])
    }

    /// Paced (the default): the first chunk as configured, then every token on its own, for the
    /// renderer's pacer to gather.
    @Test func pacedHandsOverEveryTokenAfterTheFirstChunk() {
        var config = SynthesisOptions()
        #expect(config.strategy == .paced)
        config.firstChunkTokens = 3
        var chunker = TokenChunker(config: config)
        var chunks: [[Int]] = []
        for t in 0..<6 { if let c = chunker.add(t) { chunks.append(c) } }
        #expect(chunks == [[0, 1, 2], [3], [4], [5]])
        #expect(chunker.flush() == [])
    }
}

/// The Turbo family through the same engine (TinyTurboModels): GPT-2 T3 with its own sampling order,
/// the GPT-2 tokenizer with tags, the meanflow S3Gen, three silence tokens appended as upstream.
@Suite struct TurboStreamingTests {
    static let models = try! TinyTurboModels.make()

    @Test func turboStreamsWithTheOneShotLength() async throws {
        #expect(Self.models.s3gen.isMeanflow)
        let tts = StreamingTTS(models: Self.models, options: TinyTurboModels.config)
        let text = "Oh, that's hilarious! [chuckle] Streaming Turbo."
        let chunks = try await StreamingTTSTests.collect(tts.synthesize(text))
        let resolved = TinyTurboModels.config.resolved(for: .chatterboxTurbo)
        #expect(resolved.sampling == {
            var p = T3SamplingParameters.turbo
            p.maxNewTokens = 40
            return p
        }(), "Turbo runs with upstream's Turbo defaults")
        // The same tokens without streaming: T3 alone, then three silence tokens, one S3Gen call.
        let run = SynthesisRun(models: Self.models, config: resolved, seed: 11, cancellation: SynthesisCancellation(), emit: { _ in })
        let stream = try Self.models.speech.tokens(conditioning: Self.models.builtinVoice,
                                                   textTokens: try Self.models.frontEnd.t3Input(for: text), parameters: resolved.sampling,
                                                   seed: SplitMix64.mix(run.samplingSeed), cancellation: T3Cancellation(), prefixes: nil)
        var tokens: [Int] = []
        while let t = stream.nextSpeechToken() { tokens.append(t) }
        tokens += [4299, 4299, 4299]
        let streamed = StreamingTTSTests.samples(chunks)
        print("Turbo (tiny): \(tokens.count) tokens incl. 3 silence, \(chunks.count) chunks, \(streamed.count) samples")
        #expect(streamed.count == tokens.count * 960)
        #expect(chunks.last?.isFinal == true && chunks.count >= 2)
    }
}
