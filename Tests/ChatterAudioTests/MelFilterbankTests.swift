import ChatterAudio
import Testing
import TestSupport

@Suite struct MelFilterbankTests {
    /// librosa computes the filters in float64 and stores float32; ours likewise, so the two agree
    /// to float32 rounding.
    @Test func matchesLibrosa() throws {
        let fixture = try Fixture("audio/mel_filterbank")
        #expect(fixture.cases.count == 3)
        for testCase in fixture.cases {
            let weights = MelFilterbank.make(
                sampleRate: testCase.int("sr"), nFFT: testCase.int("n_fft"), nMels: testCase.int("n_mels"),
                fMin: testCase.double("fmin"), fMax: testCase.has("fmax") ? testCase.double("fmax") : nil,
                htk: testCase.bool("htk"), normalize: testCase.bool("normalize"))
            expectParity(weights, try fixture.tensor(testCase, "weights").scalars(), tolerance: 1e-6, "mel filterbank \(testCase.name)")
        }
    }
}
