import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

/// BS.1770 integrated loudness against pyloudnorm 0.1.1 (tools/fixtures/fixturegen/conditionals.py,
/// `audio/loudness`) on real speech (the `s3tokenizer/tokenizer` fixture's 3 s clip) at several rates.
@Suite struct LoudnessTests {
    static func speech() throws -> [Float] { try Fixture("s3tokenizer/tokenizer").tensor("speech", "wav").scalars() }

    /// The signal a case describes, built as the generator builds it.
    static func signal(_ testCase: Fixture.Case, speech: [Float]) -> [Float] {
        switch testCase.string("kind") {
        case "speech": let scale = testCase.float("scale"); return speech.map { $0 * scale }
        case "gated":
            return [Float](repeating: 0, count: 8000) + speech.map { $0 * Float(0.05) }
                + [Float](repeating: 0, count: 16000) + speech.map { $0 * Float(0.0005) }
        case "silence": return [Float](repeating: 0, count: testCase.int("samples"))
        case "prefix": return Array(speech.prefix(testCase.int("samples")))
        default: preconditionFailure("unknown kind")
        }
    }

    @Test func integratedLoudnessMatchesPyloudnorm() throws {
        let fixture = try Fixture("audio/loudness")
        let speech = try Self.speech()
        var worst = 0.0, checked = 0
        for testCase in fixture.cases {
            let wav = Self.signal(testCase, speech: speech)
            let rate = testCase.int("rate")
            if testCase.has("error") {
                #expect(throws: LoudnessError.tooShort(samples: wav.count, minimum: 9600)) {
                    try Loudness.integrated(wav, sampleRate: rate)
                }
                // norm_loudness catches the error and leaves the signal alone.
                #expect(Loudness.normalized(wav, sampleRate: rate) == wav)
                continue
            }
            let expected = try fixture.doubles(testCase, "lufs")[0]
            let ours = try Loudness.integrated(wav, sampleRate: rate)
            if expected.isInfinite {
                #expect(ours == expected, "\(testCase.name): \(ours) vs \(expected)")
                #expect(Loudness.normalized(wav, sampleRate: rate) == wav, "\(testCase.name): −∞ LUFS leaves the signal as is")
            } else {
                worst = max(worst, abs(ours - expected))
                #expect(abs(ours - expected) <= 1e-9, "\(testCase.name): \(ours) vs pyloudnorm \(expected) LUFS")
                let normalized = Loudness.normalized(wav, sampleRate: rate)
                let sum = normalized.reduce(0.0) { $0 + abs(Double($1)) }
                let expectedSum = try fixture.doubles(testCase, "normalized_sum")[0]
                #expect(abs(sum - expectedSum) <= 1e-9 * expectedSum, "\(testCase.name): normalised Σ|x| \(sum) vs \(expectedSum)")
                // Plain speech lands on the target; in `gated24k` the gain lifts blocks over the
                // absolute gate, which changes the measure (as in pyloudnorm).
                if testCase.string("kind") == "speech" {
                    let after = try Loudness.integrated(normalized, sampleRate: rate)
                    #expect(abs(after + 27) < 0.01, "\(testCase.name): normalised to \(after) LUFS")
                }
            }
            checked += 1
        }
        print("parity loudness: \(checked) signals, max |LUFS error| \(worst) vs pyloudnorm (tolerance 1e-9)")
        #expect(checked == 8)
    }

    @Test func refusesABadRate() {
        #expect(throws: LoudnessError.invalidRate(0)) { try Loudness.integrated([0, 1], sampleRate: 0) }
    }
}
