import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Parity of the HiFT vocoder against upstream `HiFTGenerator` (reduced channels, same structure;
/// fixture `s3gen/hift`, see tools/fixtures/fixturegen/s3gen_hift.py).
@Suite struct HiFTTests {
    static let fixture = try! Fixture("s3gen/hift")

    static func reducedConfig() -> HiFTConfig {
        let params = fixture.case("model")!
        var config = HiFTConfig.chatterbox
        config.baseChannels = params.int("base_channels")
        config.f0CondChannels = params.int("cond_channels")
        return config
    }

    static let model = try! HiFTGenerator(fixture.file.scoped("model.mel2wav."), config: reducedConfig())

    func draws(_ name: String) throws -> SineDraws {
        let f = Self.fixture
        return SineDraws(phases: try f.tensor(name, "phases").scalars(), noise: try f.tensor(name, "noise"))
    }

    @Test func f0Predictor() throws {
        for name in ["plain", "cached"] {
            let mel = try Self.fixture.tensor(name, "mel")
            let f0 = Self.model.f0Predictor(mel)
            let expected = try Self.fixture.tensor(name, "f0")
            expectParity(Tensor(shape: [1, f0.count], scalars: f0), expected, tolerance: 1e-5, "\(name) f0")
        }
    }

    @Test func sourceWithInjectedDraws() throws {
        for name in ["plain", "cached"] {
            let f = Self.fixture
            // SineGen from upstream's own f0, so this measures the source alone.
            let f0 = try f.tensor(name, "f0").scalars()
            let sines = try Self.model.source.sines(f0: f0, draws: try draws(name))
            expectParity(sines, try f.tensor(name, "sines"), tolerance: 1e-5, "\(name) sines")
            // l_linear + tanh (+ cache overwrite) on upstream's sines.
            var merged = Self.model.source.merge(try f.tensor(name, "sines"))
            if f.file.contains("\(name).cache_source") {
                for (i, v) in try f.tensor(name, "cache_source").scalars().enumerated() { merged[i] = v }
            }
            expectParity(Tensor(shape: [1, 1, merged.count], scalars: merged), try f.tensor(name, "source"),
                             tolerance: 1e-5, "\(name) merged source")
            // The whole source path, from our own f0: f0 differs from torch's by ~1e-6 relative
            // (float32 summation order), and the cumulative phase turns that into up to ~1e-4 of the
            // source's scale after a few thousand samples — upstream's own sensitivity, not a bug.
            let output = try Self.model.inference(speechFeat: try f.tensor(name, "mel"),
                                                  cacheSource: f.file.contains("\(name).cache_source") ? try f.tensor(name, "cache_source") : nil,
                                                  draws: try draws(name))
            expectParity(output.source, try f.tensor(name, "source"), tolerance: 5e-4, "\(name) source")
        }
    }

    @Test func sourceSTFT() throws {
        let f = Self.fixture
        let stft = Self.model.sourceSTFT(try f.tensor("plain", "source"))
        expectParity(stft, try f.tensor("plain", "s_stft"), tolerance: 1e-5, "s_stft")
    }

    @Test func waveform() throws {
        let f = Self.fixture
        for name in ["plain", "cached"] {
            // decode alone, from upstream's source
            let decoded = Self.model.decode(mel: try f.tensor(name, "mel"), source: try f.tensor(name, "source"))
            let d = expectParity(decoded, try f.tensor(name, "wave"), tolerance: 1e-4, "\(name) decode")
            #expect(d.snr >= 60, "\(name) decode SNR \(d.snr) dB")
            // the whole call: the source's f0 sensitivity (above) dominates the error here
            let output = try Self.model.inference(speechFeat: try f.tensor(name, "mel"),
                                                  cacheSource: f.file.contains("\(name).cache_source") ? try f.tensor(name, "cache_source") : nil,
                                                  draws: try draws(name))
            let e = expectParity(output.wave, try f.tensor(name, "wave"), tolerance: 1e-2, "\(name) inference")
            #expect(e.snr >= 60, "\(name) inference SNR \(e.snr) dB")
        }
    }

    @Test func trimFade() throws {
        let expected = try Self.fixture.tensor("trim_fade", "fade")
        expectParity(Tensor(shape: [960], scalars: S3GenTrimFade.fade), expected, tolerance: 1e-6, "trim_fade")
        let wave = Tensor(repeating: 1, shape: [1, 1200])
        S3GenTrimFade.apply(to: wave)
        let values = wave.scalars()
        #expect(values[0] == 0 && values[479] == 0 && values[959] == 1 && values[1199] == 1)
        #expect(values[700] > 0 && values[700] < 1)
    }

    @Test func foldedWeightsGiveTheSameModel() throws {
        // A converted file holds plain `.weight` for the weight-normed layers: fold here and reload.
        let f = Self.fixture.file
        var tensors: [String: Tensor] = [:]
        let prefix = "model.mel2wav."
        for key in f.names where key.hasPrefix(prefix) {
            let name = String(key.dropFirst(prefix.count))
            if name.hasSuffix(".parametrizations.weight.original1") {
                let module = String(name.dropLast(".parametrizations.weight.original1".count))
                let g = try f.tensor(prefix + module + ".parametrizations.weight.original0")
                tensors[module + ".weight"] = foldWeightNorm(magnitude: g, direction: try f.tensor(key))
            } else if !name.hasSuffix(".parametrizations.weight.original0") {
                tensors[name] = try f.tensor(key)
            }
        }
        let folded = try HiFTGenerator(InMemoryWeights(tensors), config: Self.reducedConfig())
        let mel = try Self.fixture.tensor("plain", "mel")
        let a = try folded.inference(speechFeat: mel, draws: try draws("plain"))
        let b = try Self.model.inference(speechFeat: mel, draws: try draws("plain"))
        #expect(a.wave.scalars() == b.wave.scalars())

        // Legacy `weight_g` / `weight_v` names (pre-parametrisation weight_norm) load the same.
        var legacy: [String: Tensor] = [:]
        for key in f.names where key.hasPrefix(prefix) {
            let name = String(key.dropFirst(prefix.count))
            legacy[name.replacingOccurrences(of: ".parametrizations.weight.original0", with: ".weight_g")
                .replacingOccurrences(of: ".parametrizations.weight.original1", with: ".weight_v")] = try f.tensor(key)
        }
        let old = try HiFTGenerator(InMemoryWeights(legacy), config: Self.reducedConfig())
        #expect(try old.inference(speechFeat: mel, draws: try draws("plain")).wave.scalars() == b.wave.scalars())
    }

    @Test func fullConfigKeysAndShapes() throws {
        // Every mel2wav.* key upstream's full vocoder has, with its shape, as zeros: the loader must
        // accept them all and use exactly these names.
        let params = Self.fixture.case("full_keys")!.params["keys"] as! [String: [NSNumber]]
        #expect(params.count == 328)
        var tensors: [String: Tensor] = [:]
        for (key, shape) in params { tensors[key] = Tensor(zeros: shape.map(\.intValue)) }
        let store = InMemoryWeights(tensors, source: "full")
        let model = try HiFTGenerator(store.scoped("mel2wav."))
        let output = try model.inference(speechFeat: Tensor(zeros: [1, 80, 2]), seed: 1)
        #expect(output.wave.shape == [1, 960])
        #expect(output.source.shape == [1, 1, 960])
    }

    @Test func oneFrameGives480Samples() throws {
        #expect(HiFTConfig.chatterbox.samplesPerFrame == 480)
        let output = try Self.model.inference(speechFeat: Tensor(repeating: -5, shape: [1, 80, 1]), seed: 9)
        #expect(output.wave.shape == [1, 480] && output.source.shape == [1, 1, 480])
        #expect(output.wave.scalars().allSatisfy { $0.isFinite && abs($0) <= 0.99 })
    }

    @Test func cacheSourceOverwritesTheHead() throws {
        let mel = try Self.fixture.tensor("plain", "mel")
        let cache = Tensor(repeating: 0.25, shape: [1, 1, 100])
        let output = try Self.model.inference(speechFeat: mel, cacheSource: cache, seed: 3)
        let s = output.source.scalars()
        #expect(s[0..<100].allSatisfy { $0 == 0.25 } && s[100] != 0.25)
        // default draws are repeatable per seed and differ between seeds
        let again = try Self.model.inference(speechFeat: mel, cacheSource: cache, seed: 3)
        #expect(again.wave.scalars() == output.wave.scalars())
        let other = try Self.model.inference(speechFeat: mel, cacheSource: cache, seed: 4)
        #expect(other.wave.scalars() != output.wave.scalars())
    }

    @Test func typedErrors() throws {
        let model = Self.model
        #expect(throws: HiFTError.melShape(expectedChannels: 80, actual: [1, 79, 4])) {
            try model.inference(speechFeat: Tensor(zeros: [1, 79, 4]))
        }
        #expect(throws: HiFTError.melShape(expectedChannels: 80, actual: [80, 4])) {
            try model.inference(speechFeat: Tensor(zeros: [80, 4]))
        }
        #expect(throws: HiFTError.emptyMel) { try model.inference(speechFeat: Tensor(zeros: [1, 80, 0])) }
        let mel = Tensor(zeros: [1, 80, 3])
        mel.withUnsafeMutableFloats { $0[2 * 3 + 1] = .nan }
        #expect(throws: HiFTError.nonFiniteMel(channel: 2, frame: 1)) { try model.inference(speechFeat: mel) }
        #expect(throws: HiFTError.cacheSource(shape: [1, 1, 1441], sourceSamples: 1440)) {
            try model.inference(speechFeat: Tensor(zeros: [1, 80, 3]), cacheSource: Tensor(zeros: [1, 1, 1441]))
        }
        #expect(throws: HiFTError.self) {
            try model.inference(speechFeat: Tensor(zeros: [1, 80, 3]),
                                draws: SineDraws(phases: [0], noise: Tensor(zeros: [9, 1440])))
        }
        // Missing / wrong-shape weights throw the store's errors.
        #expect(throws: TensorError.missingTensor(path: "empty", tensor: "f0_predictor.condnet.0.parametrizations.weight.original0")) {
            try HiFTGenerator(InMemoryWeights([:], source: "empty"))
        }
        #expect(throws: TensorError.self) {
            try HiFTGenerator(Self.fixture.file.scoped("model.mel2wav."))  // reduced weights, full config
        }
    }
}
