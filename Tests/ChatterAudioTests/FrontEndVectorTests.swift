import ChatterAudio
import ChatterTensor
import Foundation
import Testing

/// frontends.md appendix test vectors on the shipped asset BAC009S0764W0121.wav (16 kHz, 67 263
/// samples), chaining our WAV reader, soxr, the torchaudio sinc resampler, Kaldi fbank and the S3Gen
/// prompt mel. Runs where the reference environment is installed.
@Suite struct FrontEndVectorTests {
    static let asset = "/work/refvenv/lib/python3.11/site-packages/s3tokenizer/assets/BAC009S0764W0121.wav"

    static func close(_ a: [Float], _ b: [Double], _ tolerance: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: asset), "needs the s3tokenizer wheel's assets"))
    func appendixVectors() throws {
        let audio = try WAVFile.read(path: Self.asset)
        let wav = audio.samples
        #expect(audio.sampleRate == 16000 && wav.count == 67_263)
        #expect(abs(wav.reduce(0.0) { $0 + Double($1) } - -2.2957458) < 1e-5)
        #expect(Self.close(Array(wav[0..<3]), [0.00112915, 0.00192261, 0.00167847], 1e-8))

        let fbank = KaldiFbank.compute(wav)
        #expect(fbank.shape == [418, 80])
        let values = fbank.scalars()
        #expect(abs(values.reduce(0.0) { $0 + Double($1) } / Double(values.count) - -9.412308) < 1e-5)
        #expect(Self.close(Array(values[8000..<8003]), [-10.342056, -9.944082, -10.967104], 2e-4))

        let w24 = try resample(wav, from: 16000, to: 24000)
        #expect(w24.count == 100_895)
        #expect(abs(w24.reduce(0.0) { $0 + Double($1) } - -3.443818) < 1e-4)
        #expect(Self.close(Array(w24[1000..<1003]), [-0.00166693, -0.00204926, -0.00094338], 1e-7))

        let mel = try S3GenMel.compute(w24)
        #expect(mel.shape == [80, 210])
        let melValues = mel.scalars()
        #expect(abs(melValues.reduce(0.0) { $0 + Double($1) } / Double(melValues.count) - -6.231741) < 1e-5)
        #expect(Self.close([melValues[100], melValues[210 + 100], melValues[420 + 100]], [-4.361287, -4.034625, -4.856213], 1e-4))

        let w16 = SincResampler.resample(w24, from: 24000, to: 16000)
        #expect(w16.count == 67_264)
        #expect(Self.close(Array(w16[1000..<1003]), [0.00106789, 0.00109798, 0.00119360], 1e-7))
    }
}
