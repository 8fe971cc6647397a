import ChatterTensor
import Foundation

/// S3Gen's vocoder (`mel2wav`, upstream `HiFTGenerator`): natural-log mel (50 Hz) → 24 kHz waveform
/// through an F0 predictor, a harmonic neural source and an iSTFT filter network.
public struct HiFTGenerator: Sendable {
    public let config: HiFTConfig
    public let f0Predictor: HiFTF0Predictor
    public let source: HiFTSourceModule
    let convPre: Conv1d
    /// ConvTranspose1d weights [in, out, k] (folded) and biases, per upsampling stage.
    let ups: [ConvTranspose1d]
    let sourceDowns: [Conv1d]
    let sourceResblocks: [HiFTResBlock]
    let resblocks: [HiFTResBlock]
    let convPost: Conv1d
    /// Periodic Hann window of n_fft samples (scipy `get_window("hann", n, fftbins=True)`).
    let window: Tensor

    /// What one `inference` call returns.
    public struct Output: Sendable {
        /// [1, samples], in [−audioLimit, audioLimit].
        public var wave: Tensor
        /// The source after the cache overwrite, [1, 1, samples]; keep a tail of it as the next call's
        /// `cacheSource`.
        public var source: Tensor
    }

    /// Loads the vocoder; `store` is scoped to `mel2wav.` (upstream names, weight norm folded if the
    /// file keeps the parametrisation).
    public init(_ store: any WeightStore, config: HiFTConfig = .chatterbox) throws {
        self.config = config
        let base = config.baseChannels, stages = config.upsampleRates.count
        // The F0 predictor stays f32 whatever the store's layer dtype: SineGen integrates its output
        // into the phase of every later sample, so an F0 error grows into a phase drift over the
        // utterance, and it is ~1 % of HiFT's multiply-adds (five convs at the mel frame rate).
        f0Predictor = try HiFTF0Predictor(LayerDTypeWeights(base: store, layerMatrixDType: .f32).scoped("f0_predictor."),
                                          inChannels: config.inChannels, condChannels: config.f0CondChannels)
        source = try HiFTSourceModule(store.scoped("m_source."), config: config)
        convPre = try Conv1d(store, "conv_pre", out: base, in: config.inChannels, kernel: 7, weightNormed: true, padding: 3)
        ups = try zip(config.upsampleRates, config.upsampleKernels).enumerated().map { i, rateAndKernel in
            let (u, k) = rateAndKernel
            return try ConvTranspose1d(store, "ups.\(i)", in: base >> i, out: base >> (i + 1), kernel: k, weightNormed: true,
                                       stride: u, padding: (k - u) / 2)
        }
        // downsample_rates = [1] + rates[::-1][:-1]; cumulative, reversed: [15, 3, 1] for 8/5/3.
        let downRates = [1] + config.upsampleRates.reversed().dropLast()
        var cumulative: [Int] = []
        for r in downRates { cumulative.append((cumulative.last ?? 1) * r) }
        let bins2 = config.nFFT + 2
        var downs: [Conv1d] = [], sourceBlocks: [HiFTResBlock] = []
        for (i, u) in cumulative.reversed().enumerated() where i < config.sourceResblockKernels.count {
            let ch = base >> (i + 1)
            downs.append(u == 1
                ? try Conv1d(store, "source_downs.\(i)", out: ch, in: bins2, kernel: 1, weightNormed: false)
                : try Conv1d(store, "source_downs.\(i)", out: ch, in: bins2, kernel: 2 * u, weightNormed: false,
                               stride: u, padding: u / 2))
            sourceBlocks.append(try HiFTResBlock(store.scoped("source_resblocks.\(i)."), channels: ch,
                                                 kernel: config.sourceResblockKernels[i],
                                                 dilations: config.sourceResblockDilations[i]))
        }
        sourceDowns = downs
        sourceResblocks = sourceBlocks
        var blocks: [HiFTResBlock] = []
        for i in 0..<stages {
            for (j, (k, d)) in zip(config.resblockKernels, config.resblockDilations).enumerated() {
                blocks.append(try HiFTResBlock(store.scoped("resblocks.\(i * config.resblockKernels.count + j)."),
                                               channels: base >> (i + 1), kernel: k, dilations: d))
            }
        }
        resblocks = blocks
        convPost = try Conv1d(store, "conv_post", out: bins2, in: base >> stages, kernel: 7, weightNormed: true, padding: 3)
        let n = config.nFFT
        window = Tensor(shape: [n], scalars: (0..<n).map { Float(0.5 - 0.5 * Foundation.cos(2 * Double.pi * Double($0) / Double(n))) })
    }

    /// Checks the mel is [1, inChannels, M ≥ 1] and finite.
    public func validate(mel: Tensor) throws {
        guard mel.rank == 3, mel.shape[0] == 1, mel.shape[1] == config.inChannels else {
            throw HiFTError.melShape(expectedChannels: config.inChannels, actual: mel.shape)
        }
        guard mel.shape[2] > 0 else { throw HiFTError.emptyMel }
        let values = mel.contiguous().scalars(), frames = mel.shape[2]
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw HiFTError.nonFiniteMel(channel: bad / frames, frame: bad % frames)
        }
    }

    // MARK: Inference

    /// `HiFTGenerator.inference(speech_feat, cache_source)` with injected random draws: returns the
    /// waveform and the source (after `cacheSource`, [1, 1, C], overwrote its first C samples).
    /// No trim_fade here (upstream applies it in S3Gen; see `S3GenTrimFade`).
    public func inference(speechFeat mel: Tensor, cacheSource: Tensor? = nil, draws: SineDraws) throws -> Output {
        try validate(mel: mel)
        let source = try excitation(f0: f0Predictor(mel), cacheSource: cacheSource, draws: draws)
        return Output(wave: decode(mel: mel, source: source), source: source)
    }

    /// The source for per-frame `f0` (Hz): SineGen → l_linear → tanh, then the first C samples
    /// replaced by `cacheSource` [1, 1, C]. Returns [1, 1, frames·samplesPerFrame].
    public func excitation(f0: [Float], cacheSource: Tensor? = nil, draws: SineDraws) throws -> Tensor {
        let samples = f0.count * config.samplesPerFrame
        var cache: [Float] = []
        if let cacheSource, cacheSource.count > 0 {
            guard cacheSource.rank == 3, cacheSource.shape[0] == 1, cacheSource.shape[1] == 1,
                  cacheSource.shape[2] <= samples else {
                throw HiFTError.cacheSource(shape: cacheSource.shape, sourceSamples: samples)
            }
            cache = cacheSource.contiguous().scalars()
        }
        var s = source.merge(try source.sines(f0: f0, draws: draws))
        for (i, v) in cache.enumerated() { s[i] = v }
        return Tensor(shape: [1, 1, samples], scalars: s)
    }

    /// `inference` with draws from `generator` (fresh phases and noise per call, as upstream).
    public func inference(speechFeat mel: Tensor, cacheSource: Tensor? = nil,
                          generator: inout some RandomNumberGenerator) throws -> Output {
        try validate(mel: mel)
        let draws = SineDraws.random(sines: config.sines, samples: mel.shape[2] * config.samplesPerFrame, using: &generator)
        return try inference(speechFeat: mel, cacheSource: cacheSource, draws: draws)
    }

    /// `inference` with draws from a `SplitMix64` seeded with `seed` (repeatable).
    public func inference(speechFeat mel: Tensor, cacheSource: Tensor? = nil, seed: UInt64 = 0) throws -> Output {
        var generator = SplitMix64(seed: seed)
        return try inference(speechFeat: mel, cacheSource: cacheSource, generator: &generator)
    }

    // MARK: Filter network

    /// The source's STFT as upstream's `decode` feeds it: [1, 2·bins, frames], real parts then
    /// imaginary parts (n_fft 16, hop 4, periodic Hann, centred with reflect padding).
    public func sourceSTFT(_ source: Tensor) -> Tensor {
        let samples = source.count
        let spectrum = stft(source.reshaped([1, samples]), nFFT: config.nFFT, hopLength: config.hopLength,
                            winLength: config.nFFT, window: window, center: true, padMode: .reflect)
        let bins = spectrum.shape[1], frames = spectrum.shape[2]
        let complex = spectrum.contiguous().scalars()
        var out = [Float](repeating: 0, count: 2 * bins * frames)
        for k in 0..<bins {
            for f in 0..<frames {
                out[k * frames + f] = complex[(k * frames + f) * 2]
                out[(bins + k) * frames + f] = complex[(k * frames + f) * 2 + 1]
            }
        }
        return Tensor(shape: [1, 2 * bins, frames], scalars: out)
    }

    /// Upstream `decode(x: mel, s: source)`: mel [1, 80, M] and source [1, 1, T] → wave [1, T].
    public func decode(mel: Tensor, source: Tensor) -> Tensor {
        let sSTFT = sourceSTFT(source)
        var x = convPre(mel.contiguous())
        let kernels = config.resblockKernels.count
        for i in ups.indices {
            leakyReLUInPlace(x, slope: config.lreluSlope)
            x = ups[i](x)
            if i == ups.count - 1 {  // ReflectionPad1d((1, 0)): prepend x[1]
                x = concatenate([x.slice(2, 1..<2), x], axis: 2)
            }
            let si = sourceResblocks[i](sourceDowns[i](sSTFT))
            addInPlace(x, si)
            let sum = resblocks[i * kernels](x)
            for j in 1..<kernels { addInPlace(sum, resblocks[i * kernels + j](x)) }
            x = div(sum, Float(kernels))
        }
        leakyReLUInPlace(x, slope: 0.01)
        x = convPost(x)
        return inverseSTFT(x)
    }

    /// conv_post output [1, 2·bins, F] → magnitude exp(·) ≤ 100 and phase sin(·) → iSTFT → clamp.
    func inverseSTFT(_ post: Tensor) -> Tensor {
        let bins = config.bins, frames = post.shape[2]
        let values = post.contiguous().scalars()
        var spectrum = [Float](repeating: 0, count: bins * frames * 2)
        for k in 0..<bins {
            for f in 0..<frames {
                let magnitude = min(Foundation.exp(values[k * frames + f]), 100)
                let phase = Foundation.sin(values[(bins + k) * frames + f])
                spectrum[(k * frames + f) * 2] = magnitude * Foundation.cos(phase)
                spectrum[(k * frames + f) * 2 + 1] = magnitude * Foundation.sin(phase)
            }
        }
        let wave = istft(Tensor(shape: [1, bins, frames, 2], scalars: spectrum), nFFT: config.nFFT,
                         hopLength: config.hopLength, winLength: config.nFFT, window: window, center: true)
        return clamp(wave, min: -config.audioLimit, max: config.audioLimit)
    }
}

/// S3Gen's `trim_fade`: `S3Token2Wav.inference` (and `forward`) multiply the first 960 samples of the
/// vocoder output by 480 zeros then a rising half-cosine ½(cos(linspace(π, 0, 480)) + 1). Upstream
/// applies it to the whole utterance's waveform, not per vocoder call (`hift_inference` has none).
public enum S3GenTrimFade {
    public static let samples = 480

    /// The 960-sample fade, computed as torch does in f32 (linspace, cos, +1, /2).
    public static let fade: [Float] = {
        let n = samples
        var fade = [Float](repeating: 0, count: 2 * n)
        let start: Float = .pi, end: Float = 0
        let step = (end - start) / Float(n - 1)
        for i in 0..<n {  // torch.linspace: start + i·step for the first half, end − (n−1−i)·step after
            let t = i < n / 2 ? start + step * Float(i) : end - step * Float(n - 1 - i)
            fade[n + i] = (Foundation.cos(t) + 1) / 2
        }
        return fade
    }()

    /// Multiplies the head of `wave` ([1, T] or [T]) by the fade, in place. Upstream raises when T <
    /// 960; here the fade is applied to the samples there are.
    public static func apply(to wave: Tensor) {
        wave.withUnsafeMutableFloats { buffer in
            for i in 0..<min(buffer.count, fade.count) { buffer[i] *= fade[i] }
        }
    }
}
