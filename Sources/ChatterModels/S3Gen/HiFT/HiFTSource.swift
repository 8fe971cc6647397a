import ChatterTensor
import Foundation

/// The random numbers one HiFT call consumes, drawn upstream from torch's global RNG (which a port
/// cannot reproduce), so parity tests inject them and production draws them from a seeded generator.
public struct SineDraws: Sendable {
    /// SineGen's initial phase per sine, U(−π, π); entry 0 (the fundamental) is ignored — upstream
    /// zeroes it after drawing.
    public var phases: [Float]
    /// Standard-normal noise per sine and sample, [sines, samples] (`torch.randn_like(sine_waves)`);
    /// SineGen scales it by 0.003 (voiced) or 0.1/3 (unvoiced).
    public var noise: Tensor

    public init(phases: [Float], noise: Tensor) {
        self.phases = phases
        self.noise = noise
    }

    /// Fresh draws for `samples` samples of `sines` sines.
    public static func random(sines: Int, samples: Int, using generator: inout some RandomNumberGenerator) -> SineDraws {
        let phases = (0..<sines).map { _ in Float.random(in: -Float.pi..<Float.pi, using: &generator) }
        var noise = [Float](repeating: 0, count: sines * samples)
        var i = 0
        while i < noise.count {  // Box–Muller, two normals per pair of uniforms
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator)
            let u2 = Double.random(in: 0..<1, using: &generator)
            let r = (-2 * Foundation.log(u1)).squareRoot()
            noise[i] = Float(r * Foundation.cos(2 * Double.pi * u2))
            if i + 1 < noise.count { noise[i + 1] = Float(r * Foundation.sin(2 * Double.pi * u2)) }
            i += 2
        }
        return SineDraws(phases: phases, noise: Tensor(shape: [sines, samples], scalars: noise))
    }
}

/// SineGen draws as a pure function of (seed, sine, absolute sample), so an utterance vocoded in
/// pieces sees the same noise and phases as one call over the whole of it (the vocoder's analogue
/// of `FlowNoise`). Upstream draws fresh numbers from torch's RNG per call, which no port can
/// reproduce; parity tests inject those, and the engine uses this.
public struct SineDrawSource: Sendable, Hashable {
    public let seed: UInt64
    public let sines: Int

    public init(seed: UInt64, sines: Int) {
        self.seed = seed
        self.sines = sines
    }

    /// Initial phase per sine, U(−π, π) (entry 0 is ignored by SineGen, as upstream).
    public var phases: [Float] {
        (0..<sines).map { i in
            let u = Double(SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(i) | 1 << 63)) >> 11) / 9_007_199_254_740_992.0
            return Float(-Double.pi + 2 * Double.pi * u)
        }
    }

    /// N(0, 1) for sine `sine` at absolute sample `sample`.
    public func noise(sine: Int, sample: Int) -> Float {
        SplitMix64.gaussian(seed: seed, index: UInt64(sample) &* UInt64(sines) &+ UInt64(sine))
    }

    /// The draws for absolute samples `samples`.
    public func draws(samples: Range<Int>) -> SineDraws {
        var noise = [Float](repeating: 0, count: sines * samples.count)
        for i in 0..<sines {
            for (j, n) in samples.enumerated() { noise[i * samples.count + j] = self.noise(sine: i, sample: n) }
        }
        return SineDraws(phases: phases, noise: Tensor(shape: [sines, samples.count], scalars: noise))
    }
}

/// `SourceModuleHnNSF` with its `SineGen`: f0 (per mel frame) → harmonic excitation → source.
public struct HiFTSourceModule: Sendable {
    public let config: HiFTConfig
    let linearWeight: [Float]
    let linearBias: Float

    /// `store` is scoped to `m_source.`.
    public init(_ store: any WeightStore, config: HiFTConfig) throws {
        self.config = config
        linearWeight = try store.float32("l_linear.weight", shape: [1, config.sines]).scalars()
        linearBias = try store.float32("l_linear.bias", shape: [1]).scalars()[0]
    }

    /// SineGen's output e_i[n] = sine_i[n]·uv[n] + noise_i[n], [sines, samples], for f0 upsampled
    /// by nearest repeat to `samplesPerFrame` samples per frame.
    public func sines(f0: [Float], draws: SineDraws) throws -> Tensor {
        var cumulative = [Double](repeating: 0, count: config.sines)
        return try sines(f0: f0, draws: draws, cumulative: &cumulative)
    }

    /// `sines` continuing from running phases: `cumulative[i]` is sine i's unwrapped phase (in
    /// cycles, accumulated in double as torch's cumsum does) before the first sample, and holds it
    /// after the last on return. Splitting f0 into consecutive pieces and carrying `cumulative`
    /// gives the same samples, bit for bit, as one call over the whole f0.
    public func sines(f0: [Float], draws: SineDraws, cumulative: inout [Double]) throws -> Tensor {
        let sines = config.sines, upsample = config.samplesPerFrame
        precondition(cumulative.count == sines, "one running phase per sine")
        let samples = f0.count * upsample
        guard draws.phases.count == sines else {
            throw HiFTError.draws("\(draws.phases.count) phases for \(sines) sines")
        }
        guard draws.noise.shape == [sines, samples] else {
            throw HiFTError.draws("noise \(draws.noise.shape) for [\(sines), \(samples)]")
        }
        let noise = draws.noise.contiguous().scalars()
        let rate = Float(config.sampleRate), amplitude = config.sineAmplitude, threshold = config.voicedThreshold
        let twoPi = Float(2 * Double.pi)
        let voicedStd = config.noiseStd
        var out = [Float](repeating: 0, count: sines * samples)
        for i in 0..<sines {
            let phase: Float = i == 0 ? 0 : draws.phases[i]
            let harmonic = Float(i + 1)
            var running = cumulative[i]  // torch's CPU cumsum accumulates f32 in double
            defer { cumulative[i] = running }
            for n in 0..<samples {
                let f = f0[n / upsample]
                running += Double(f * harmonic / rate)
                let wrapped = fmodf(Float(running), 1)
                let sine = amplitude * sinf(twoPi * wrapped + phase)
                let uv: Float = f > threshold ? 1 : 0
                let noiseAmp = uv * voicedStd + (1 - uv) * amplitude / 3
                out[i * samples + n] = sine * uv + noiseAmp * noise[i * samples + n]
            }
        }
        return Tensor(shape: [sines, samples], scalars: out)
    }

    /// The merged source tanh(Σ_i w_i·e_i + b), [samples], from SineGen's output [sines, samples].
    public func merge(_ sines: Tensor) -> [Float] {
        let count = sines.shape[0], samples = sines.shape[1]
        let e = sines.contiguous().scalars()
        var source = [Float](repeating: 0, count: samples)
        for n in 0..<samples {
            var sum: Float = 0
            for i in 0..<count { sum += e[i * samples + n] * linearWeight[i] }
            source[n] = Foundation.tanh(sum + linearBias)
        }
        return source
    }
}
