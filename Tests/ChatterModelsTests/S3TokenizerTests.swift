import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Parity of the S3TokenizerV2 port against upstream (Chatterbox's `S3Tokenizer` wrapper around
/// s3tokenizer's `S3TokenizerV2`), reduced config with seeded random weights, on real speech
/// (fixture `s3tokenizer/tokenizer`, see tools/fixtures/fixturegen/s3tokenizer.py).
@Suite struct S3TokenizerTests {
    static let fixture = try! Fixture("s3tokenizer/tokenizer")

    static func reducedConfig() -> S3TokenizerConfig {
        let p = fixture.case("model")!
        return S3TokenizerConfig(melBands: p.int("n_mels"), state: p.int("n_audio_state"), heads: p.int("n_audio_head"),
                                 layers: p.int("n_audio_layer"))
    }

    static let model = try! S3Tokenizer(fixture.file.scoped("model."), config: reducedConfig())

    func tokens(_ name: String) throws -> [Int] { try Self.fixture.tensor(name, "tokens").integers().map { Int($0) } }

    @Test func logMel() throws {
        let f = Self.fixture
        let mel = try Self.model.logMelSpectrogram(try f.tensor("speech", "wav").scalars())
        let reference = try f.tensor("speech", "mel")
        #expect(mel.shape == reference.shape)
        // Upstream's own float32 log-mel is 2.7e-5 from float64 in bins just above the −8 floor (powers
        // ~1e-8 of the peak, where float32 FFT rounding is a large fraction); ours is in the same band.
        expectParity(mel, reference, tolerance: 4e-5, "log-mel vs torch float32")
        expectParity(mel, try f.tensor("speech", "mel64"), tolerance: 4e-5, "log-mel vs float64")
        // Everywhere at least two decades above the floor: ≤ 1e-5.
        let (ours, ref) = (mel.scalars(), reference.scalars())
        let floor = ref.min()!
        let kept = ref.indices.filter { ref[$0] >= floor + 0.5 }
        #expect(kept.count > ref.count / 2)
        expectParity(kept.map { ours[$0] }, kept.map { ref[$0] }, tolerance: 1e-5, "log-mel above floor + 2 decades")
    }

    @Test func melFiltersRecomputedMatchBuffer() throws {
        // Without `_mel_filters` in the store, the librosa slaney filters are recomputed.
        let f = Self.fixture
        var tensors: [String: Tensor] = [:]
        for key in ["encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight", "encoder.conv2.bias",
                    "quantizer._codebook.project_down.weight", "quantizer._codebook.project_down.bias"] {
            tensors[key] = try f.file.tensor("model." + key)
        }
        let bare = try S3Tokenizer(InMemoryWeights(tensors), config: S3TokenizerConfig(state: 128, heads: 2, layers: 0))
        expectParity(bare.melFilters, try f.tensor("model", "_mel_filters"), tolerance: 1e-7, "mel filters")
    }

    @Test func encoderAndTokens() throws {
        let f = Self.fixture
        let hidden = Self.model.encode(mel: try f.tensor("speech", "mel"))
        expectParity(hidden, try f.tensor("speech", "hidden"), tolerance: 1e-4, "encoder hidden")
        let fromMel = Self.model.quantize(hidden: try f.tensor("speech", "hidden"))
        #expect(fromMel == (try tokens("speech")), "FSQ on upstream's hidden")
        let fromWav = try Self.model.tokenize(try f.tensor("speech", "wav").scalars())
        let expected = try tokens("speech")
        #expect(fromWav.count == expected.count)
        #expect(zip(fromWav, expected).filter { $0 != $1 }.count == 0, "tokens from wav differ")
    }

    @Test func maxLength() throws {
        let f = Self.fixture
        let out = try Self.model.tokenize(try f.tensor("maxlen", "wav").scalars(), maxLength: f.case("maxlen")!.int("max_len"))
        #expect(out == (try tokens("maxlen")))
    }

    @Test func longAudioWindows() throws {
        let f = Self.fixture
        let clip = try f.tensor("speech", "wav").scalars()
        let samples = f.case("long")!.int("samples")
        let wav = (0..<samples).map { clip[$0 % clip.count] }
        let out = try Self.model.tokenize(wav)
        let expected = try tokens("long")
        #expect(out.count == expected.count)
        #expect(zip(out, expected).filter { $0 != $1 }.count == 0, "long-audio tokens differ")
    }

    @Test func configInferredFromWeights() throws {
        #expect(try S3TokenizerConfig.inferred(from: Self.fixture.file.scoped("model.")) == Self.reducedConfig())
        #expect(throws: S3TokenizerError.self) { try S3TokenizerConfig.inferred(from: InMemoryWeights([:])) }
        let odd = InMemoryWeights(["encoder.conv1.weight": Tensor(zeros: [100, 128, 3])])
        #expect(throws: S3TokenizerError.self) { try S3TokenizerConfig.inferred(from: odd) }
    }

    @Test func mergeSlicesLikePython() {
        let a = Array(0..<750), b = Array(1000..<1030)
        #expect(S3Tokenizer.merge([a, b]) == Array(0..<700) + Array(1030..<1030))
        #expect(S3Tokenizer.merge([a, Array(2000..<2100)]) == Array(0..<700) + Array(2050..<2100))
        #expect(S3Tokenizer.merge([a]) == a)
    }

    @Test func typedErrors() throws {
        #expect(throws: S3TokenizerError.emptyAudio) { try Self.model.tokenize([]) }
        #expect(throws: S3TokenizerError.audioTooShort(samples: 200, minimum: 201)) {
            try Self.model.tokenize([Float](repeating: 0.1, count: 200))
        }
        #expect(throws: S3TokenizerError.invalidMaxLength(0)) { try Self.model.tokenize([Float](repeating: 0, count: 1000), maxLength: 0) }
        // Shortest accepted audio: one mel frame → one token; silence works (log10 clamp).
        #expect(try Self.model.tokenize([Float](repeating: 0, count: 201)).count == 1)
        // Wrong weights: the full-size config against the reduced store, and a missing tensor.
        do {
            _ = try S3Tokenizer(Self.fixture.file.scoped("model."))
            Issue.record("full config loaded reduced weights")
        } catch let error as S3TokenizerError {
            guard case .invalidWeights = error else { Issue.record("\(error)"); return }
        }
        do {
            _ = try S3Tokenizer(InMemoryWeights([:]), config: Self.reducedConfig())
            Issue.record("empty store loaded")
        } catch let error as S3TokenizerError {
            guard case .invalidWeights = error else { Issue.record("\(error)"); return }
        }
        #expect(throws: S3TokenizerError.self) { try S3Tokenizer(InMemoryWeights([:]), config: S3TokenizerConfig(state: 100, heads: 2)) }
    }
}
