import ChatterModels
import ChatterTensor
import Foundation
import Testing
import TestSupport

/// Upstream's VoiceEncoder at a reduced size (LSTM 40→64, projection 64→48) with seeded random
/// weights, on real speech (tools/fixtures/fixturegen/voice.py).
@Suite struct VoiceEncoderTests {
    static func load() throws -> (Fixture, VoiceEncoder) {
        let fixture = try Fixture("voice/voice_encoder")
        return (fixture, try VoiceEncoder(weights: fixture.file.scoped("weights.")))
    }

    @Test func sizesComeFromTheWeights() throws {
        let (_, encoder) = try Self.load()
        #expect(encoder.hiddenSize == 64)
        #expect(encoder.embeddingSize == 48)
    }

    @Test func trimMelAndEmbeddingMatchUpstream() throws {
        let (fixture, encoder) = try Self.load()
        for testCase in fixture.cases {
            let wav = try fixture.tensor(testCase, "wav").scalars()
            let kept = VoiceEncoder.trimSilence(wav, topDB: 20)
            #expect(kept == testCase.int("trim_start")..<testCase.int("trim_end"), "trim \(testCase.name)")
            let mel = try encoder.melSpectrogram(Array(wav[kept]))
            expectParity(mel, try fixture.tensor(testCase, "mel"), tolerance: 1e-5, "mel \(testCase.name)")
            let embedding = try encoder.embed(wav)
            expectParity(embedding, try fixture.tensor(testCase, "embedding"), tolerance: 1e-4, "embedding \(testCase.name)")
        }
    }

    @Test func partialWindowCountsFollowUpstream() {
        #expect(VoiceEncoder.frameStep(rate: 1.3) == 77)
        // get_num_wins: shorter than a window → one zero-padded window.
        #expect(VoiceEncoder.windowCount(frames: 76, step: 77) == (1, 160))
        #expect(VoiceEncoder.windowCount(frames: 160, step: 77) == (1, 160))
        // 365 frames: divmod(282, 77) = (3, 51); (51 + 83) / 160 = 0.84 ≥ 0.8 → 4 windows.
        #expect(VoiceEncoder.windowCount(frames: 365, step: 77) == (4, 391))
        // 350 frames: divmod(267, 77) = (3, 36); 119 / 160 < 0.8 → 3 windows, tail dropped.
        #expect(VoiceEncoder.windowCount(frames: 350, step: 77) == (3, 314))
    }

    @Test func silenceAndShortAudioAreTypedErrors() throws {
        let (_, encoder) = try Self.load()
        #expect(throws: VoiceEncoderError.silent) { try encoder.embed([Float](repeating: 0, count: 32_000)) }
        #expect(throws: VoiceEncoderError.tooShort(samples: 300, minimum: 400)) {
            try encoder.embed((0..<300).map { Float(sin(Double($0) * 0.3)) * 0.1 })
        }
    }

    @Test func wrongShapedWeightsThrow() throws {
        let (fixture, _) = try Self.load()
        var tensors: [String: Tensor] = [:]
        let scoped = fixture.file.scoped("weights.")
        let lstmKeys = (0..<3).flatMap { k in
            ["weight_ih_l\(k)", "weight_hh_l\(k)", "bias_ih_l\(k)", "bias_hh_l\(k)"].map { "lstm." + $0 }
        }
        for key in ["proj.weight", "proj.bias"] + lstmKeys {
            tensors[key] = try scoped.tensor(key)
        }
        #expect(throws: Never.self) { try VoiceEncoder(weights: InMemoryWeights(tensors)) }
        var broken = tensors
        broken["lstm.weight_ih_l1"] = Tensor(zeros: [256, 40])
        #expect(throws: TensorError.self) { try VoiceEncoder(weights: InMemoryWeights(broken)) }
        broken = tensors
        broken["proj.bias"] = nil
        #expect(throws: TensorError.self) { try VoiceEncoder(weights: InMemoryWeights(broken)) }
    }
}
