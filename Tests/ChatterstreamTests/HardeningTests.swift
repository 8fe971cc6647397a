import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import ChatterModels
@testable import Chatterstream

/// Issue 19's reproducers on the engine side: each was a crash (or a refusal of a valid input) and
/// must now be a typed error, with the engine serving the next request.
@Suite(.serialized) struct HardeningTests {
    /// The engine refuses a count over the family-wide cap (`SynthesisOptions.maxTokensLimit`) as an
    /// invalid option, and one within it but over the model's positions as T3's invalid parameter.
    static func isMaxNewTokensError(_ error: any Error) -> Bool {
        if case let .invalidParameter(name, _, _)? = error as? T3Error { return name == "max_new_tokens" }
        if case let .invalidOption(field, _)? = error as? StreamingTTSError { return field == "max_tokens" }
        return false
    }

    /// `max_tokens: 9223372036854775807` ended the process (prefill + count overflowed in
    /// T3Decoder); 100000 was accepted and failed later. Both are refused up front, for both
    /// families, and the engine goes on.
    @Test(arguments: [Int.max, 100_000, Int.max / 2 + 1])
    func hugeMaxTokensIsATypedError(count: Int) async throws {
        for (family, models, base) in [(ModelFamily.chatterbox, TinySpeechModels.shared, TinySpeechModels.config),
                                       (.chatterboxTurbo, try TinyTurboModels.make(), TinyTurboModels.config)] {
            let tts = StreamingTTS(models: models, options: base)
            var config = base
            config.maxTokens = count
            do {
                _ = try await StreamingTTSTests.collect(tts.synthesize("Hi there.", options: config))
                Issue.record("\(family.rawValue): max tokens \(count) accepted")
            } catch {
                #expect(Self.isMaxNewTokensError(error), "\(family.rawValue): \(error)")
                print("\(family.rawValue), max tokens \(count): \(error)")
            }
            let after = try await StreamingTTSTests.collect(tts.synthesize("Hi there."))
            #expect(!after.isEmpty, "\(family.rawValue): the engine serves the next request")
        }
    }

    /// The library path that crashed: the Turbo decoder itself with an unbounded count (no
    /// validation before it) throws instead of overflowing.
    @Test func turboDecoderRefusesACountThatOverflowsThePositions() throws {
        let models = try TinyTurboModels.make()
        let t3 = try #require(models.t3)
        let voice = models.builtinVoice.t3
        let conditioning = try t3.conditioning(speakerEmbedding: voice.speakerEmb, promptTokens: voice.condPromptSpeechTokens ?? [],
                                               exaggeration: 0)
        let text = try models.frontEnd.t3Input(for: "Hi.")
        #expect(throws: T3Error.self) {
            _ = try T3Decoder(model: t3, conditioning: conditioning, textTokens: text, cfgWeight: 0, maxNewTokens: .max)
        }
        var parameters = T3SamplingParameters.turbo
        parameters.maxNewTokens = .max
        #expect(throws: T3Error.self) { try parameters.validate(for: t3.config) }
        parameters.maxNewTokens = t3.config.maxGeneratedTokens
        try parameters.validate(for: t3.config)
    }

    /// The bound is the model's: the original family's speech position table less the start token.
    @Test func maxGeneratedTokensFollowsTheModel() {
        #expect(T3Config.english.maxGeneratedTokens == 4099)
        #expect(T3Config.turbo.maxGeneratedTokens == 8196)
        var parameters = T3SamplingParameters()
        parameters.maxNewTokens = 4099
        #expect(throws: Never.self) { try parameters.validate(for: .english) }
        parameters.maxNewTokens = 4100
        #expect(throws: T3Error.self) { try parameters.validate(for: .english) }
    }
}

/// The manifest's size check follows symlinks: a model directory whose files are links (as a hub
/// snapshot's are) loads like the real one.
@Suite struct ManifestSymlinkTests {
    @Test func aModelDirectoryOfSymlinksIsAccepted() throws {
        let scratch = try TemporaryDirectory()
        let blobs = scratch.url.appendingPathComponent("blobs"), model = scratch.url.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        let tensors = Fixture.root.appendingPathComponent("formats/synthetic_checkpoint.safetensors")
        try FileManager.default.copyItem(at: tensors, to: blobs.appendingPathComponent("t3-blob"))
        let size = try #require(ModelStore.fileSize(tensors))
        try FileManager.default.createSymbolicLink(at: model.appendingPathComponent("t3.safetensors"),
                                                   withDestinationURL: blobs.appendingPathComponent("t3-blob"))
        let manifest = ModelManifest(format: "chatterstream", formatVersion: ModelManifest.currentFormatVersion, family: .chatterbox,
                                     files: [.init(name: "t3.safetensors", bytes: Int(size), sha256: "", group: "t3", dtype: nil, tensors: nil)],
                                     sources: [], dropped: [], createdBy: "test", hyperparameters: nil)
        try JSONEncoder().encode(manifest).write(to: model.appendingPathComponent("manifest.json"))
        let opened = try ConvertedModel(directory: model)
        #expect(try opened.file("t3.safetensors").entries.count > 0)
        #expect(ModelStore.fileSize(model.appendingPathComponent("t3.safetensors")) == size)
    }

    /// A manifest naming a file outside its directory is refused before anything is opened.
    @Test func manifestNamesStayInsideTheDirectory() throws {
        let scratch = try TemporaryDirectory()
        for name in ["../t3.safetensors", "/etc/passwd", "..", "a/b.safetensors", ""] {
            let manifest = ModelManifest(format: "chatterstream", formatVersion: ModelManifest.currentFormatVersion, family: .chatterbox,
                                         files: [.init(name: name, bytes: 1, sha256: "", group: "t3", dtype: nil, tensors: nil)],
                                         sources: [], dropped: [], createdBy: "test", hyperparameters: nil)
            try JSONEncoder().encode(manifest).write(to: scratch.url.appendingPathComponent("manifest.json"))
            #expect(throws: ConversionError.self, "\(name)") { _ = try ConvertedModel(directory: scratch.url) }
        }
    }
}

/// `SynthesisLimits`: each limit is a typed error before (or while) the work it bounds, and the
/// engine serves the next request.
@Suite(.serialized) struct SynthesisLimitTests {
    static func expectLimit(_ name: String, _ tts: StreamingTTS, _ text: String, voice: Voice = .builtin,
                            next: String = "Hi.") async throws {
        do {
            _ = try await StreamingTTSTests.collect(tts.synthesize(text, voice: voice))
            Issue.record("\(name): not refused")
        } catch let error as SynthesisLimitExceeded {
            print("\(name): \(error)")
            #expect(error.limit == name && error.value > error.maximum)
        }
        var within = TinySpeechModels.config
        within.maxTokens = 4
        #expect(!(try await StreamingTTSTests.collect(tts.synthesize(next, options: within))).isEmpty, "\(name): the engine goes on")
    }

    @Test func everyLimitIsATypedError() async throws {
        let models = TinySpeechModels.shared, config = TinySpeechModels.config
        var limits = SynthesisLimits()
        limits.maxTextCharacters = 30
        try await Self.expectLimit("maxTextCharacters", StreamingTTS(models: models, options: config, limits: limits),
                                   String(repeating: "word ", count: 7))
        limits = SynthesisLimits()
        limits.maxPieces = 2
        var pieces = config
        pieces.maxCharactersPerPiece = 20
        try await Self.expectLimit("maxPieces", StreamingTTS(models: models, options: pieces, limits: limits),
                                   "One sentence here. Two sentences here. Three sentences here.")
        limits = SynthesisLimits()
        limits.maxSpeechTokens = 5
        try await Self.expectLimit("maxSpeechTokens", StreamingTTS(models: models, options: config, limits: limits), "Hi there, how are you?")
        limits = SynthesisLimits()
        limits.maxWallSeconds = 0
        let slow = StreamingTTS(models: models, options: config, limits: limits)
        do {
            _ = try await StreamingTTSTests.collect(slow.synthesize("Hi."))
            Issue.record("maxWallSeconds: not refused")
        } catch let error as SynthesisLimitExceeded {
            #expect(error.limit == "maxWallSeconds", "\(error)")
        }
        limits = SynthesisLimits()
        limits.maxReferenceBytes = 1000
        let scratch = try TemporaryDirectory()
        try WAVFile.write([Float](repeating: 0.1, count: 24_000), sampleRate: 24_000, to: scratch.filePath("voice.wav"))
        try await Self.expectLimit("maxReferenceBytes", StreamingTTS(models: models, options: config, limits: limits), "Hi.",
                                   voice: .file(scratch.path("voice.wav")))
    }
}
