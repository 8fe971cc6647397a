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

    /// S3Gen's bf16 compute (`S3GenPrecision.bf16`: every Linear and Conv1d of the flow and HiFT on
    /// bf16 weights and bf16-rounded activations) against the f32 model, same noise and draws. On
    /// avx512_bf16 that is the native GEMM, whose error budget this states on the reduced fixture
    /// (the full-size figures are in BENCHMARKS.md, "S3Gen in bf16"); elsewhere the bf16 weights are
    /// widened back (exactly) and multiply f32 activations.
    @Test func bf16PrecisionStaysWithinItsBudgetOfF32() throws {
        let f = Self.fixture, c = f.case("wave")!, params = f.case("model")!
        var config = HiFTConfig.chatterbox
        config.baseChannels = params.int("base_channels")
        config.f0CondChannels = params.int("cond_channels")
        let bf16 = try S3Gen(weights: f.file.scoped("model."), decoderHeads: params.int("dec_heads"), vocoder: config, precision: .bf16)
        #expect(bf16.precision == .bf16 && Self.model.precision == .f32)
        #expect(S3GenPrecision.auto.resolved == (KernelISA.current >= .avx512bf16 ? .bf16 : .f32))
        let noise = try f.tensor(c, "noise")
        let draws = SineDraws(phases: try f.tensor(c, "phases").scalars(), noise: try f.tensor(c, "sine_noise"))
        let run = { (model: S3Gen) in
            try model.inference(tokens: try Self.tokens(), reference: try Self.reference(), steps: c.int("steps"),
                                noise: noise.reshaped([noise.shape[1], noise.shape[2]]), draws: draws)
        }
        let reference = try run(Self.model), out = try run(bf16)
        let mel = ParityError(out.mel.scalars(), reference.mel.scalars())
        let wave = ParityError(out.wave.scalars(), reference.wave.scalars())
        // The vocoder alone, both on the f32 model's mel: HiFT's bf16 convs without the flow's error.
        let vocoded = try bf16.vocode(mel: reference.mel, draws: draws)
        let vocoder = ParityError(vocoded.wave.scalars(), reference.wave.scalars())
        print("S3Gen bf16 vs f32 (\(KernelISA.current)): mel \(mel); vocoder on the f32 mel: \(vocoder); end to end: \(wave)")
        #expect(out.wave.shape == reference.wave.shape)
        // Measured on this fixture (2026-12-07): mel 4.7–5.2e-3 relative, vocoder 21.5–21.7 dB with the native
        // GEMM; capped to avx2 (the bf16 weights widened exactly, f32 activations) 3.8e-3 and 23.8 dB:
        // most of the error is the weights' own rounding to 8 significant bits. The full-size random
        // checkpoint's whole bf16 S3Gen stays at 44.5 dB (BENCHMARKS.md, "S3Gen in bf16"); this
        // reduced random HiFT is more sensitive. The bounds catch a broken path (a wrong tap order
        // or a lost bias is ~0 dB), not a change of a few dB.
        #expect(mel.relative < 2e-2, "bf16 mel relative error \(mel.relative)")
        #expect(vocoder.snr >= 18, "bf16 vocoder SNR \(vocoder.snr) dB")
        // End to end, the fixture's F0 predictor (classifier ×150, voiced) turns the flow's mel error
        // into an F0 error that SineGen integrates into phase, and the waves drift apart (4–9 dB, as
        // any mel change of that size would do): why the budget is stated on the mel and the vocoder.
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
