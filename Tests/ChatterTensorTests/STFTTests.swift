import Foundation
import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct STFTTests {
    static let name = "ops/stft"

    @Test func fixtureLoads() throws {
        #expect(try !Fixture(Self.name).cases.isEmpty)
    }

    // References are float64 torch results on the float32 inputs. A frame's transform carries the
    // FFT's ≈ 3e-7 relative error; the iSTFT adds the window multiply, a few overlap-add terms and
    // the envelope division, all O(ulp), so 1e-5 holds with a wide margin (we see ≤ ~5e-7).
    @Test(arguments: Fixture.caseNames(Self.name))
    func parityWithTorch(_ name: String) throws {
        let (fixture, c) = try Fixture.load(Self.name, case: name)
        let nFFT = c.int("n_fft"), hop = c.int("hop"), win = c.int("win_length")
        let center = c.bool("center"), normalized = c.bool("normalized"), onesided = c.bool("onesided")
        let window = fixture.has(c, "window") ? try fixture.tensor(c, "window") : nil
        let signal = try fixture.tensor(c, "signal")
        let spectrum = stft(signal, nFFT: nFFT, hopLength: hop, winLength: win, window: window, center: center,
                            padMode: c.string("pad_mode") == "reflect" ? .reflect : .constant,
                            normalized: normalized, onesided: onesided)
        expectParity(spectrum, try fixture.tensor(c, "stft"), tolerance: 1e-5, "\(name) stft")

        guard fixture.has(c, "random_spec") else { return }
        func inverse(_ spec: Tensor, length: Int? = nil) -> Tensor {
            istft(spec, nFFT: nFFT, hopLength: hop, winLength: win, window: window, center: center,
                  normalized: normalized, onesided: onesided, length: length)
        }
        expectParity(inverse(spectrum), try fixture.tensor(c, "roundtrip"), tolerance: 1e-5, "\(name) istft(stft)")
        expectParity(inverse(spectrum, length: signal.shape[signal.rank - 1]), signal, tolerance: 1e-5,
                     "\(name) round trip vs signal")
        let random = try fixture.tensor(c, "random_spec")
        expectParity(inverse(random), try fixture.tensor(c, "istft_random"), tolerance: 1e-5, "\(name) istft")
        expectParity(inverse(random, length: c.int("short")), try fixture.tensor(c, "istft_short"),
                     tolerance: 1e-5, "\(name) istft short")
        if c.has("long") {
            expectParity(inverse(random, length: c.int("long")), try fixture.tensor(c, "istft_long"),
                         tolerance: 1e-5, "\(name) istft long")
        }
    }

    @Test func unbatchedMatchesBatchedRow() {
        let signal = Tensor(shape: [2, 100], scalars: (0..<200).map { Float(sin(Double($0) * 0.37)) })
        let hann: [Float] = (0..<16).map { n in Float(0.5 - 0.5 * cos(2 * Double.pi * Double(n) / 16)) }
        let window = Tensor(shape: [16], scalars: hann)
        let batched = stft(signal, nFFT: 16, hopLength: 4, window: window)
        let single = stft(signal.slice(0, 1..<2).reshaped([100]), nFFT: 16, hopLength: 4, window: window)
        #expect(batched.shape == [2, 9, 26, 2])
        #expect(single.scalars() == batched.slice(0, 1..<2).reshaped([9, 26, 2]).scalars())
        let back = istft(single, nFFT: 16, hopLength: 4, window: window)
        #expect(back.shape == [100])
    }
}
