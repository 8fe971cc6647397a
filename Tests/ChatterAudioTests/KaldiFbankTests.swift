import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

@Suite struct KaldiFbankTests {
    @Test(arguments: ["speech_0122", "speech_0121_short"]) func matchesTorchaudio(name: String) throws {
        let fixture = try Fixture("audio/kaldi_fbank")
        let input = try fixture.tensor(name, "input").scalars()
        let expected = try fixture.tensor(name, "fbank")
        let feats = KaldiFbank.compute(input)
        #expect(feats.shape == [1 + (input.count - 400) / 160, 80])
        expectParity(feats, expected, tolerance: 1e-5, "kaldi fbank \(name)")
        // CMN subtracts the per-bin mean over frames.
        let cmn = KaldiFbank.compute(input, subtractMean: true)
        let reference = expected.scalars(), frames = expected.shape[0]
        var normalised = reference
        for b in 0..<80 {
            let mean = (0..<frames).reduce(Float(0)) { $0 + reference[$1 * 80 + b] } / Float(frames)
            for f in 0..<frames { normalised[f * 80 + b] -= mean }
        }
        expectParity(cmn.scalars(), normalised, tolerance: 1e-4, "kaldi fbank CMN \(name)")
    }

    @Test func shortInputsGiveNoFrames() {
        #expect(KaldiFbank.compute([Float](repeating: 0.1, count: 399)).shape == [0, 80])
        #expect(KaldiFbank.compute([]).shape == [0, 80])
        let silent = KaldiFbank.compute([Float](repeating: 0, count: 400))
        #expect(silent.shape == [1, 80])
        #expect(silent.scalars().allSatisfy { $0 == log(Float.ulpOfOne) })
    }
}
