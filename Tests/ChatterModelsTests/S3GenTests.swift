import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// S3Gen end to end against upstream `S3Token2Wav.inference` (reduced flow + reduced HiFT, injected
/// CFM noise and SineGen draws; fixture `s3gen/e2e`, tools/fixtures/fixturegen/s3gen_e2e.py).
@Suite struct S3GenTests {
    static let fixture = try! Fixture("s3gen/e2e")

    static let model: S3Gen = {
        let params = fixture.case("model")!
        var config = HiFTConfig.chatterbox
        config.baseChannels = params.int("base_channels")
        config.f0CondChannels = params.int("cond_channels")
        return try! S3Gen(weights: fixture.file.scoped("model."), decoderHeads: params.int("dec_heads"), vocoder: config)
    }()

    /// The fixture's ref_dict as the built-in voice stores it (`gen.*`), read through `S3Gen.reference`.
    static func reference() throws -> FlowReference {
        let c = fixture.case("wave")!
        let store = InMemoryWeights([
            "gen.prompt_token": try fixture.tensor(c, "prompt_token"),
            "gen.prompt_feat": try fixture.tensor(c, "prompt_feat"),
            "gen.embedding": try fixture.tensor(c, "embedding"),
        ])
        return try S3Gen.reference(from: store)
    }

    static func tokens() throws -> [Int] {
        try fixture.tensor("wave", "token").integers().map { Int($0) }
    }

    @Test func waveMatchesUpstreamWithInjectedDraws() throws {
        let f = Self.fixture, c = f.case("wave")!
        #expect(!Self.model.isMeanflow)
        let noise = try f.tensor(c, "noise")
        let draws = SineDraws(phases: try f.tensor(c, "phases").scalars(), noise: try f.tensor(c, "sine_noise"))
        let out = try Self.model.inference(tokens: try Self.tokens(), reference: try Self.reference(), steps: c.int("steps"),
                                           noise: noise.reshaped([noise.shape[1], noise.shape[2]]), draws: draws)
        let mel = try f.tensor(c, "mel")
        expectParity(out.mel, mel.reshaped([mel.shape[1], mel.shape[2]]), tolerance: 1e-4, "e2e mel")
        #expect(out.wave.shape == [1, 960 * c.int("T")])
        let wave = expectParity(out.wave, try f.tensor(c, "wave"), tolerance: 1e-2, "e2e wave (trim_fade)")
        // The flow's mel agrees to ~1e-5 (111 dB); HiFT's random-weight F0 predictor (classifier
        // scaled ×150 in the fixture) turns that into phase drift over 6720 samples: 63 dB end to end
        // on this fixture (57 dB on an earlier draw of weights), 75 dB for the vocoder on upstream's
        // own mel. The issue asks for 60 dB.
        #expect(wave.snr >= 60, "end-to-end SNR \(wave.snr) dB")
        // The vocoder alone on upstream's mel (separates the flow's fp32 rounding from HiFT's).
        let fromUpstreamMel = try Self.model.vocode(mel: mel.reshaped([mel.shape[1], mel.shape[2]]), draws: draws)
        let vocoderOnly = expectParity(fromUpstreamMel.wave, try f.tensor(c, "wave"), tolerance: 1e-2, "e2e wave from upstream's mel")
        #expect(vocoderOnly.snr >= 60, "vocoder-on-upstream-mel SNR \(vocoderOnly.snr) dB")
        #expect(out.wave.scalars().prefix(480).allSatisfy { $0 == 0 }, "trim_fade zeroes the first 20 ms")
    }

    @Test func seededDrawsAreRepeatableAndFaded() throws {
        let tokens = try Self.tokens(), reference = try Self.reference()
        let a = try Self.model.inference(tokens: tokens, reference: reference, steps: 2, noiseSeed: 5, drawSeed: 6)
        let b = try Self.model.inference(tokens: tokens, reference: reference, steps: 2, noiseSeed: 5, drawSeed: 6)
        #expect(a.wave.scalars() == b.wave.scalars())
        let unfaded = try Self.model.inference(tokens: tokens, reference: reference, steps: 2, noiseSeed: 5, drawSeed: 6,
                                               trimFade: false)
        let (x, y) = (a.wave.scalars(), unfaded.wave.scalars())
        for i in [0, 479, 700, 959, 960, 3000] { #expect(x[i] == (i < 960 ? y[i] * S3GenTrimFade.fade[i] : y[i])) }
    }

    @Test func inputErrorsSurfaceAsTypedErrors() throws {
        let reference = try Self.reference()
        let vocabulary = Self.model.flow.vocabulary
        #expect(throws: FlowError.noTokens) { try Self.model.inference(tokens: [], reference: reference) }
        #expect(throws: FlowError.tokenOutOfRange(index: reference.promptTokens.count + 1, token: vocabulary, vocabulary: vocabulary)) {
            try Self.model.inference(tokens: [1, vocabulary, 2], reference: reference)
        }
        let feat = reference.promptMel
        #expect(throws: FlowError.promptLengthMismatch(promptTokens: 5, promptFrames: 9, expectedFrames: 10)) {
            try S3Gen.reference(from: InMemoryWeights([
                "gen.prompt_token": try Self.fixture.tensor("wave", "prompt_token"),
                "gen.prompt_feat": feat.slice(0, 0..<9).contiguous(),
                "gen.embedding": reference.embedding,
            ]))
        }
        var values = reference.embedding.scalars()
        values[3] = .nan
        #expect(throws: FlowError.nonFiniteReference(what: "speaker embedding")) {
            try S3Gen.reference(from: InMemoryWeights([
                "gen.prompt_token": try Self.fixture.tensor("wave", "prompt_token"),
                "gen.prompt_feat": feat,
                "gen.embedding": Tensor(shape: [1, values.count], scalars: values),
            ]))
        }
        #expect(throws: HiFTError.self) {
            try Self.model.vocode(mel: Tensor(zeros: [80, 3]),
                                  draws: SineDraws(phases: [0], noise: Tensor(zeros: [1, 1])))
        }
    }

    static let turboConds = "/work/shared/assets/chatterbox-turbo/conds.pt"

    /// The real Turbo voice (not in the repository; skipped where the asset is absent).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: turboConds)))
    func builtInVoiceFromCondsPt() throws {
        let reference = try S3Gen.reference(checkpoint: try TorchCheckpoint(path: Self.turboConds))
        #expect(reference.promptTokens.count > 0 && reference.promptTokens.allSatisfy { (0..<6561).contains($0) })
        #expect(reference.promptMel.shape == [2 * reference.promptTokens.count, 80])
        #expect(reference.embedding.shape == [192])
    }
}
