import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

@Suite struct ResampleTests {
    /// libsoxr HQ against librosa's `soxr_hq` (python-soxr 0.5.0.post1 bundles its own libsoxr build;
    /// ours is Debian's 0.1.3, so agreement is to float noise, not bit-exact).
    @Test func soxrHQMatchesLibrosa() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let wav24 = try fixture.tensor(speech, "wav24").scalars()
        let up = try resample(wav24, from: 24_000, to: 32_000, quality: .hq)
        #expect(up.count == 64_050)  // ceil(4 · 48 037 / 3)
        expectParity(up, try fixture.tensor(speech, "x32").scalars(), tolerance: 1e-5, "soxr HQ 24k→32k")
        let wm32 = try fixture.tensor(speech, "wm32").scalars()
        let down = try resample(wm32, from: 32_000, to: 24_000)
        expectParity(down, try fixture.tensor(speech, "back24").scalars(), tolerance: 1e-5, "soxr HQ 32k→24k")
    }

    @Test func polyphaseMatchesScipy() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let wm24 = try fixture.tensor(speech, "wm24").scalars()
        let up = try resamplePolyphase(wm24, from: 24_000, to: 32_000)
        expectParity(up, try fixture.tensor(speech, "poly32").scalars(), tolerance: 1e-6, "polyphase 24k→32k")
    }

    @Test func lengthsAndEdgeCases() throws {
        #expect(try resample([1, 2, 3], from: 24_000, to: 24_000) == [1, 2, 3])
        #expect(try resample([], from: 24_000, to: 32_000) == [])
        #expect(try resample([Float](repeating: 0.1, count: 7), from: 24_000, to: 32_000).count == 10)
        #expect(try resample([Float](repeating: 0.1, count: 24_001), from: 24_000, to: 16_000).count == 16_001)
        #expect(try resamplePolyphase([Float](repeating: 0.1, count: 7), from: 24_000, to: 32_000).count == 10)
        #expect(throws: ResampleError.invalidRate(from: 0, to: 32_000)) { try resample([1], from: 0, to: 32_000) }
    }
}
