import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

@Suite struct SincResamplerTests {
    @Test func kernelMatchesTorchaudio() throws {
        let fixture = try Fixture("audio/resample_sinc")
        let reference = try fixture.tensor("kernel", "kernel")
        let (kernel, phases, taps, width) = SincResampler.kernel(from: 24_000, to: 16_000)
        #expect(phases == 2 && taps == 23 && width == 10)
        #expect(width == fixture.case("kernel")!.int("width"))
        #expect(reference.shape == [2, 23])
        expectParity(kernel, reference.scalars(), tolerance: 1e-7, "sinc kernel 24k→16k")
    }

    @Test(arguments: ["speech", "short_odd"]) func speechMatchesTorchaudio(name: String) throws {
        let fixture = try Fixture("audio/resample_sinc")
        let input = try fixture.tensor(name, "input").scalars()
        let expected = try fixture.tensor(name, "output").scalars()
        let output = SincResampler.resample(input, from: 24_000, to: 16_000)
        #expect(output.count == (2 * input.count + 2) / 3)
        #expect(output.count == expected.count)
        guard output.count == expected.count else { return }
        expectParity(output, expected, tolerance: 1e-5, "torchaudio sinc 24k→16k \(name)")
    }

    @Test func lengthsAndEdgeCases() {
        #expect(SincResampler.resample([], from: 24_000, to: 16_000).isEmpty)
        #expect(SincResampler.resample([1], from: 24_000, to: 16_000).count == 1)
        #expect(SincResampler.resample([1, 2, 3, 4], from: 24_000, to: 16_000).count == 3)
        #expect(SincResampler.resample([1, 2], from: 16_000, to: 16_000) == [1, 2])
        #expect(SincResampler.resample([Float](repeating: 0.5, count: 10), from: 16_000, to: 24_000).count == 15)
    }
}
