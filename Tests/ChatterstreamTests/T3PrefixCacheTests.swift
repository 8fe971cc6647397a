import ChatterTensor
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import ChatterModels
@testable import Chatterstream

/// The engine's cache of T3 conditioning prefixes (`T3PrefixCache`): a repeated voice reuses its
/// prefix, per text piece too, and the audio is the same as with no cache at all.
@Suite struct T3PrefixCacheTests {
    struct Engine {
        let models: SpeechModels
        let config: SynthesisOptions
        let label: String
    }

    static let engines = [
        Engine(models: TinySpeechModels.shared, config: TinySpeechModels.config, label: "original (Llama, CFG)"),
        Engine(models: TurboStreamingTests.models, config: TinyTurboModels.config, label: "Turbo (GPT-2)"),
    ]

    /// One synthesis through `SynthesisRun` with the built-in voice, `prefixes` nil running every
    /// prefill in full.
    static func run(_ engine: Engine, _ text: String, config: SynthesisOptions? = nil,
                    prefixes: T3PrefixCache?) throws -> (samples: [Int16], statistics: SynthesisStatistics) {
        let config = config ?? engine.config
        let chunks = Mutex<[AudioChunk]>([])
        var run = SynthesisRun(models: engine.models, config: config.resolved(for: engine.models.family), seed: config.seed!,
                               cancellation: SynthesisCancellation(), emit: { chunk in chunks.withLock { $0.append(chunk) } })
        run.prefixes = prefixes
        let statistics = try run.run(textPieces: try SynthesisRun.textPieces(text, models: engine.models, config: config),
                                     voice: engine.models.builtinVoice)
        return (StreamingTTSTests.samples(chunks.withLock { $0 }), statistics)
    }

    @Test(arguments: [0, 1]) func aRepeatedVoiceReusesItsPrefixAndSoundsTheSame(engine index: Int) async throws {
        let engine = Self.engines[index]
        let text = "The same voice, twice over."
        let cold = try Self.run(engine, text, prefixes: nil)
        #expect(cold.statistics.prefixesBuilt == 0 && cold.statistics.prefixesReused == 0)

        let tts = StreamingTTS(models: engine.models, options: engine.config)
        let first = StreamingTTSTests.samples(try await StreamingTTSTests.collect(tts.synthesize(text)))
        #expect(tts.prefixes.builds == 1 && tts.prefixes.hits == 0)
        let second = StreamingTTSTests.samples(try await StreamingTTSTests.collect(tts.synthesize(text)))
        #expect(tts.prefixes.builds == 1 && tts.prefixes.hits == 1, "the second run must reuse the prefix")
        let other = StreamingTTSTests.samples(try await StreamingTTSTests.collect(tts.synthesize("Another text, same voice.")))
        #expect(tts.prefixes.builds == 1 && tts.prefixes.hits == 2 && tts.prefixes.count == 1)
        print("\(engine.label): \(cold.samples.count) samples; prefix built once, reused twice; identical PCM: cold vs first \(cold.samples == first), first vs second \(first == second)")
        #expect(!first.isEmpty && !other.isEmpty)
        #expect(first == cold.samples, "built-then-used prefix vs full prefill")
        #expect(second == cold.samples, "cached prefix vs full prefill")
    }

    /// Every piece of a long text runs its own prefill: the first builds the prefix, the rest reuse it.
    @Test(arguments: [0, 1]) func everyPieceOfALongTextReusesThePrefix(engine index: Int) throws {
        let engine = Self.engines[index]
        var config = engine.config
        config.maxCharactersPerPiece = 40
        config.maxTokens = 12
        let text = "First piece of the text here. Second piece follows it now. A third piece then. And the fourth one ends."
        let pieces = try SynthesisRun.textPieces(text, models: engine.models, config: config).count
        #expect(pieces >= 3)
        let cold = try Self.run(engine, text, config: config, prefixes: nil)
        let cache = T3PrefixCache()
        let warm = try Self.run(engine, text, config: config, prefixes: cache)
        print("\(engine.label): \(pieces) pieces, prefix built \(warm.statistics.prefixesBuilt), reused \(warm.statistics.prefixesReused)")
        #expect(warm.statistics.prefixesBuilt == 1 && warm.statistics.prefixesReused == pieces - 1)
        #expect(cache.builds == 1 && cache.hits == pieces - 1)
        #expect(warm.samples == cold.samples && !warm.samples.isEmpty)
    }

    /// The exaggeration is part of the original model's conditioning (its emotion projection), not Turbo's.
    @Test(arguments: [0, 1]) func exaggerationKeysThePrefixWhereItShapesTheConditioning(engine index: Int) throws {
        let engine = Self.engines[index]
        let cache = T3PrefixCache()
        var config = engine.config
        config.maxTokens = 5
        _ = try Self.run(engine, "Hi.", config: config, prefixes: cache)
        config.exaggeration = 0.9
        _ = try Self.run(engine, "Hi.", config: config, prefixes: cache)
        let emotional = engine.models.family == .chatterbox
        #expect(cache.builds == (emotional ? 2 : 1) && cache.hits == (emotional ? 0 : 1), "\(engine.label)")
    }

    /// Least recently used entries go first; capacity 0 turns the cache off.
    @Test func theCacheIsBoundedAndCanBeOff() throws {
        let engine = Self.engines[1]
        let t3 = (engine.models.speech as! T3SpeechTokenModel).t3
        let voice = engine.models.builtinVoice.t3
        func inputs(_ bump: Float) -> T3ConditioningInputs {
            var speaker = voice.speakerEmb
            speaker[0] += bump
            return T3ConditioningInputs(config: t3.config, speakerEmbedding: speaker, promptTokens: voice.condPromptSpeechTokens ?? [],
                                        exaggeration: 0)
        }
        let cache = T3PrefixCache(capacity: 2)
        for bump in [0, 1, 0, 2] as [Float] { _ = try cache.prefix(model: t3, inputs: inputs(bump)) }
        #expect(cache.builds == 3 && cache.hits == 1 && cache.count == 2)
        #expect(try cache.prefix(model: t3, inputs: inputs(0))?.reused == true, "0 was used after 1, so 1 went")
        #expect(try cache.prefix(model: t3, inputs: inputs(1))?.reused == false)
        #expect(try T3PrefixCache(capacity: 0).prefix(model: t3, inputs: inputs(0)) == nil)
    }

    /// The built-in voice's prefix kept on disk: the next "process" (a fresh cache attached to the
    /// same file) starts warm with the same audio; a file for other weights or a damaged one is
    /// refused, not trusted, and rewritten after the next build.
    @Test(arguments: [0, 1]) func aPersistedBuiltinPrefixStartsTheNextProcessWarm(engine index: Int) throws {
        let engine = Self.engines[index]
        let t3 = try #require(engine.models.t3)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prefix-persist-\(getpid())-\(index)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let voice = engine.models.builtinVoice.t3
        func persistence(_ fingerprint: String) -> T3PrefixPersistence {
            T3PrefixPersistence(path: directory.appendingPathComponent("builtin-voice-t3-prefix.safetensors").path, fingerprint: fingerprint,
                                speakerEmbedding: voice.speakerEmb, promptTokens: voice.condPromptSpeechTokens ?? [])
        }
        var config = engine.config
        config.maxTokens = 8
        let cold = try Self.run(engine, "Kept for next time.", config: config, prefixes: nil)

        let first = T3PrefixCache()
        #expect(first.attach(persistence("weights A"), model: t3) == .absent)
        let built = try Self.run(engine, "Kept for next time.", config: config, prefixes: first)
        #expect(first.builds == 1)
        let written = try first.persistPending()
        #expect(written == persistence("weights A").path)
        let again = try first.persistPending()
        #expect(again == nil, "written once")

        let next = T3PrefixCache()
        #expect(next.attach(persistence("weights A"), model: t3) == .loaded)
        let warm = try Self.run(engine, "Kept for next time.", config: config, prefixes: next)
        #expect(next.builds == 0 && next.hits == 1, "\(engine.label): the file must serve the first run")
        let nothing = try next.persistPending()
        #expect(nothing == nil)
        #expect(!cold.samples.isEmpty && built.samples == cold.samples && warm.samples == cold.samples)

        // Other weights: refused, then replaced after the next build.
        let other = T3PrefixCache()
        guard case .rejected = other.attach(persistence("weights B"), model: t3) else {
            Issue.record("a prefix for other weights must be refused")
            return
        }
        _ = try Self.run(engine, "Kept for next time.", config: config, prefixes: other)
        let rewritten = try other.persistPending()
        #expect(other.builds == 1 && rewritten != nil)
        #expect(T3PrefixCache().attach(persistence("weights B"), model: t3) == .loaded)

        // A damaged file is refused with the reader's reason, never a crash.
        let path = persistence("weights B").path
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Atomically, as a rename: the cache above still maps the old file.
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path), options: .atomic)
        let outcome = T3PrefixCache().attach(persistence("weights B"), model: t3)
        print("\(engine.label): persisted prefix \(bytes.count) bytes; warm run identical to cold: \(warm.samples == cold.samples); truncated file: \(outcome)")
        guard case .rejected = outcome else {
            Issue.record("a truncated prefix file must be refused")
            return
        }
    }
}
