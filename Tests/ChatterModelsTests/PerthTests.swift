import ChatterAudio
import ChatterModels
import ChatterTensor
import Foundation
import Testing
import TestSupport

/// The Perth watermarker with the real checkpoint (fetched by tools/perth/fetch-checkpoint.sh) against
/// resemble-perth 1.0.1 on 2 s of real speech (fixture perth/watermark).
@Suite struct PerthTests {
    static let checkpointPath = Fixture.root.appendingPathComponent("../../.cache/perth/perth_net_250000.pth.tar").standardized.path
    static let haveCheckpoint = FileManager.default.fileExists(atPath: checkpointPath)

    static func load() throws -> PerthWatermarker { try PerthWatermarker(checkpointPath: checkpointPath) }

    @Test func audioProcessorRoundTrip() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let x32 = try fixture.tensor(speech, "x32").scalars()
        let processor = PerthAudioProcessor()
        let magPhase = processor.analyse(x32)
        #expect(magPhase.frames == speech.int("frames32"))
        let back = processor.synthesise(magPhase)
        #expect(back.count == 320 * (magPhase.frames - 1))
        // Analysis then synthesis without the network gives back the input (upstream's own round trip
        // is exact to 5e-13 in float64; the fixture no longer stores it, to stay small).
        expectParity(back, Array(x32.prefix(back.count)), tolerance: 1e-5, "Perth STFT→iSTFT round trip")
    }

    @Test(.enabled(if: haveCheckpoint, "run tools/perth/fetch-checkpoint.sh first"))
    func networkParityAt32kHz() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let perth = try Self.load()
        let x32 = try fixture.tensor(speech, "x32").scalars()
        let magPhase = perth.processor.analyse(x32)
        let mask = PerthNet.activityMask(magPhase.magnitude, frames: magPhase.frames)
        #expect(Int(mask.reduce(0, +)) == speech.int("mask_frames"))
        let wm32 = perth.watermark32k(x32)
        expectParity(wm32, try fixture.tensor(speech, "wm32").scalars(), tolerance: 1e-4, "Perth watermarked 32 kHz")
        let expectedWM = try fixture.tensor(speech, "score_wm32").scalars()[0]
        let expectedClean = try fixture.tensor(speech, "score_clean32").scalars()[0]
        let scoreWM = try #require(perth.rawScore32k(try fixture.tensor(speech, "wm32").scalars()))
        let scoreClean = try #require(perth.rawScore32k(x32))
        print("Perth decoder score: watermarked \(scoreWM) (upstream \(expectedWM)), clean \(scoreClean) (upstream \(expectedClean))")
        #expect(abs(scoreWM - expectedWM) <= 1e-5)
        #expect(abs(scoreClean - expectedClean) <= 1e-5)
    }

    @Test(.enabled(if: haveCheckpoint, "run tools/perth/fetch-checkpoint.sh first"))
    func applyAndDetectAt24kHz() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let perth = try Self.load()
        let wav24 = try fixture.tensor(speech, "wav24").scalars()
        let upstreamWM = try fixture.tensor(speech, "wm24").scalars()

        let ours = try perth.apply(wav24, sampleRate: 24_000)
        #expect(ours.count == 240 * ((4 * wav24.count + 2) / 3 / 320))  // upstream shortens: 48 037 → 48 000
        expectParity(ours, upstreamWM, tolerance: 1e-4, "Perth apply at 24 kHz")

        let upstreamScore = try perth.detect(upstreamWM, sampleRate: 24_000, round: false)
        let ownScore = try perth.detect(ours, sampleRate: 24_000, round: false)
        let cleanScore = try perth.detect(wav24, sampleRate: 24_000, round: false)
        print("Perth detect at 24 kHz: upstream-watermarked \(upstreamScore), ours \(ownScore), clean \(cleanScore)")
        #expect(abs(upstreamScore - (try fixture.tensor(speech, "detect_wm24").scalars()[0])) <= 1e-5)
        #expect(abs(cleanScore - (try fixture.tensor(speech, "detect_clean24").scalars()[0])) <= 1e-5)
        #expect(upstreamScore >= 0.99 && ownScore >= 0.99)
        #expect(cleanScore <= 0.01)
        #expect(try perth.detect(ours, sampleRate: 24_000) == 1)
        #expect(try perth.detect(wav24, sampleRate: 24_000) == 0)

        let preserved = try perth.applyPreservingLength(wav24, sampleRate: 24_000)
        #expect(preserved.count == wav24.count)
        let preservedScore = try perth.detect(preserved, sampleRate: 24_000, round: false)
        print("Perth length-preserving apply: score \(preservedScore)")
        #expect(preservedScore >= 0.99)
    }

    /// The other shipped utterance: upstream's watermark, ours, the clean clip, and a level change.
    @Test(.enabled(if: haveCheckpoint, "run tools/perth/fetch-checkpoint.sh first"))
    func detectsOnAnotherUtterance() throws {
        let fixture = try Fixture("perth/detect_other")
        let speech = fixture.cases[0]
        let perth = try Self.load()
        let wav24 = try fixture.tensor(speech, "wav24").scalars()
        let upstreamWM = try fixture.tensor(speech, "wm24").scalars()
        let ours = try perth.apply(wav24, sampleRate: 24_000)
        expectParity(ours, upstreamWM, tolerance: 1e-4, "Perth apply, second utterance")
        let scores = [
            ("upstream-watermarked", try perth.detect(upstreamWM, sampleRate: 24_000, round: false), "detect_wm24"),
            ("clean", try perth.detect(wav24, sampleRate: 24_000, round: false), "detect_clean24"),
            ("half level", try perth.detect(upstreamWM.map { $0 * 0.5 }, sampleRate: 24_000, round: false), "detect_half24"),
        ]
        for (label, score, role) in scores {
            let expected = try fixture.tensor(speech, role).scalars()[0]
            print("Perth detect, second utterance, \(label): \(score) (upstream \(expected))")
            #expect(abs(score - expected) <= 1e-5, "\(label)")
        }
        #expect(try perth.detect(ours, sampleRate: 24_000, round: false) >= 0.99)
        #expect(try perth.detect(try perth.applyPreservingLength(wav24, sampleRate: 24_000), sampleRate: 24_000, round: false) >= 0.99)
    }

    @Test(.enabled(if: haveCheckpoint, "run tools/perth/fetch-checkpoint.sh first"))
    func robustness() throws {
        let perth = try Self.load()
        // Silence: upstream returns NaN; we return 0 and leave it silent.
        let silence = [Float](repeating: 0, count: 24_000)
        #expect(try perth.detect(silence, sampleRate: 24_000, round: false) == 0)
        let silentOut = try perth.applyPreservingLength(silence, sampleRate: 24_000)
        #expect(silentOut.count == silence.count && silentOut.allSatisfy { $0.isFinite && abs($0) < 1e-6 })
        // A single active frame among silence: upstream's fast branch can miss it (0/0); never NaN here.
        var click = [Float](repeating: 0, count: 32_000)
        click[16_000] = 0.9
        let clickScore = try perth.detect(click, sampleRate: 32_000, round: false)
        #expect(clickScore.isFinite && clickScore >= 0 && clickScore <= 1)
        // Shorter than one analysis window: unchanged, score 0.
        for count in [0, 1, 100, 768, 769, 800] {
            let short = (0..<count).map { Float(sin(Double($0) * 0.05)) * 0.3 }
            let out = try perth.applyPreservingLength(short, sampleRate: 24_000)
            #expect(out.count == count && out.allSatisfy(\.isFinite), "\(count) samples")
            let score = try perth.detect(short, sampleRate: 24_000, round: false)
            #expect(score.isFinite && score >= 0 && score <= 1, "\(count) samples")
            #expect(try perth.apply(short, sampleRate: 32_000).allSatisfy(\.isFinite))
        }
        // Clipped, over-driven speech-like input.
        let clipped = (0..<24_000).map { i in max(-1, min(1, Float(sin(Double(i) * 0.03) * 4 + sin(Double(i) * 0.21)))) }
        let marked = try perth.applyPreservingLength(clipped, sampleRate: 24_000)
        #expect(marked.count == clipped.count && marked.allSatisfy(\.isFinite))
        let score = try perth.detect(marked, sampleRate: 24_000, round: false)
        #expect(score.isFinite)
        #expect(try perth.detect([Float](repeating: 1, count: 24_000), sampleRate: 24_000, round: false).isFinite)
        // Non-finite input is refused by name.
        #expect(throws: PerthError.nonFiniteInput(index: 2)) { try perth.detect([0, 0, .nan, 0], sampleRate: 24_000) }
        #expect(throws: PerthError.invalidSampleRate(0)) { try perth.apply([0], sampleRate: 0) }
    }

    @Test func missingAndCorruptCheckpointsAreNamed() throws {
        let missing = "/nonexistent/perth_net_250000.pth.tar"
        do {
            _ = try PerthWatermarker(checkpointPath: missing)
            Issue.record("loaded a missing checkpoint")
        } catch let PerthError.checkpoint(path, reason) {
            #expect(path == missing && !reason.isEmpty)
        }
        let corrupt = FileManager.default.temporaryDirectory.appendingPathComponent("perth-corrupt-\(getpid()).pth.tar").path
        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: corrupt))
        defer { try? FileManager.default.removeItem(atPath: corrupt) }
        do {
            _ = try PerthWatermarker(checkpointPath: corrupt)
            Issue.record("loaded a corrupt checkpoint")
        } catch let error as PerthError {
            #expect(error.description.contains(corrupt), "\(error)")
        }
        // A store without the networks' tensors names the first one missing.
        do {
            _ = try PerthWatermarker(weights: InMemoryWeights([:], source: "empty.pth.tar"))
            Issue.record("built from an empty store")
        } catch let error as TensorError {
            #expect(error.description.contains("encoder.layers.0.conv.weight"), "\(error)")
        }
    }
}

/// The watermark survives our own Ogg Opus round trip (RFC 7845 stream at 64 kb/s, decoded by libopus).
@Suite struct PerthOpusRobustnessTests {
    @Test(.enabled(if: PerthTests.haveCheckpoint, "run tools/perth/fetch-checkpoint.sh first"))
    func watermarkSurvivesOpusAt64kbps() throws {
        let fixture = try Fixture("perth/watermark")
        let speech = fixture.cases[0]
        let perth = try PerthTests.load()
        let wav24 = try fixture.tensor(speech, "wav24").scalars()
        let marked = try perth.applyPreservingLength(wav24, sampleRate: 24_000)
        func opusRoundTrip(_ samples: [Float]) throws -> [Float] {
            let encoder = try OggOpusEncoder(sampleRate: 24_000)
            var stream = try encoder.encode(samples)
            stream.append(try encoder.finalize())
            return try OggOpusDecoder.decode(stream, sampleRate: 24_000)
        }
        let markedAfter = try opusRoundTrip(marked)
        let cleanAfter = try opusRoundTrip(wav24)
        #expect(markedAfter.count == marked.count)
        let markedScore = try perth.detect(markedAfter, sampleRate: 24_000, round: false)
        let cleanScore = try perth.detect(cleanAfter, sampleRate: 24_000, round: false)
        print("Perth after Ogg Opus 64 kb/s: watermarked \(markedScore), clean \(cleanScore)")
        #expect(markedScore >= 0.9)
        #expect(cleanScore <= 0.1)
    }
}
