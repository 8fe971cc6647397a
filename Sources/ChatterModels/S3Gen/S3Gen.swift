import ChatterTensor
import Foundation

/// S3Gen end to end (upstream `S3Token2Wav.inference` with a precomputed `ref_dict`): speech tokens +
/// reference → flow (encoder, CFM) → mel → HiFT → trim_fade → 24 kHz waveform.
///
///     let s3gen = try S3Gen(weights: SafetensorsFile(path: "s3gen.safetensors"))
///     let reference = try S3Gen.reference(from: conds)           // conds' `gen.*` entries
///     let out = try s3gen.inference(tokens: tokens, reference: reference)   // out.wave [1, 480·2T]
///
/// Standard (10 Euler steps with CFG) or meanflow (2 steps, no CFG), detected from the weights as
/// `S3GenFlow` does. Input errors are the parts' typed errors (`FlowError` for tokens and the
/// reference, `HiFTError` for the mel and the injected draws), thrown, never trapped.
public struct S3Gen: Sendable {
    public let flow: S3GenFlow
    public let vocoder: HiFTGenerator
    /// The arithmetic of the matrix products (`precision` at load, resolved: never `.auto`).
    public let precision: S3GenPrecision

    /// `weights` holds upstream's `flow.*` and `mel2wav.*` keys (other keys, e.g. the tokenizer's or
    /// CAMPPlus's, are ignored). `decoderHeads`: 8 upstream; `vocoder`: the HiFT hyper-parameters;
    /// `precision`: f32 (the reference) unless asked.
    public init(weights: some WeightStore, decoderHeads: Int = 8, vocoder: HiFTConfig = .chatterbox,
                precision: S3GenPrecision = .f32) throws {
        self.precision = precision.resolved
        let store: any WeightStore = self.precision == .bf16 ? LayerDTypeWeights(base: weights, layerMatrixDType: .bf16) : weights
        flow = try S3GenFlow(weights: store.scoped("flow."), decoderHeads: decoderHeads)
        self.vocoder = try HiFTGenerator(store.scoped("mel2wav."), config: vocoder)
    }

    public var isMeanflow: Bool { flow.isMeanflow }
    /// Output samples per speech token (960 = 2 mel frames · 480 samples).
    public var samplesPerToken: Int { flow.tokenMelRatio * vocoder.config.samplesPerFrame }
    public var sampleRate: Int { vocoder.config.sampleRate }

    /// The built-in voice's reference: `prompt_token` [1, P], `prompt_feat` [1, 2P, 80] and
    /// `embedding` [1, 192] under `prefix` (`gen.` in `conds.safetensors` / `conds.pt`).
    public static func reference(from store: some WeightStore, prefix: String = "gen.") throws -> FlowReference {
        let tokens = try store.tensor(prefix + "prompt_token").converted(to: .f32).contiguous().scalars().map { Int($0) }
        var feat = try store.tensor(prefix + "prompt_feat")
        if feat.rank == 3, feat.shape[0] == 1 { feat = feat.reshaped([feat.shape[1], feat.shape[2]]) }
        return try FlowReference(promptTokens: tokens, promptMel: feat, embedding: try store.tensor(prefix + "embedding"))
    }

    /// The built-in voice of a `conds.pt` (upstream `Conditionals.save`: `gen.*` beside `t3.*`).
    public static func reference(checkpoint: TorchCheckpoint, prefix: String = "gen.") throws -> FlowReference {
        let tensors = Dictionary(checkpoint.tensors().filter { $0.name.hasPrefix(prefix) }.map { ($0.name, $0.tensor) },
                                 uniquingKeysWith: { first, _ in first })
        return try reference(from: InMemoryWeights(tensors, source: checkpoint.path), prefix: prefix)
    }

    /// What one `inference` call returns.
    public struct Output: Sendable {
        /// [1, 480·2T] at 24 kHz, trim_fade applied (when asked).
        public var wave: Tensor
        /// The flow's mel [80, 2T] (natural log, 50 Hz), prompt frames removed.
        public var mel: Tensor
        /// HiFT's source [1, 1, samples].
        public var source: Tensor
    }

    /// `S3Token2Wav.inference(speech_tokens, ref_dict=…)`: flow with finalize = true, HiFT without a
    /// cache, then trim_fade on the first 960 samples.
    /// - `steps`: CFM steps (default 10 standard / 2 meanflow).
    /// - `noise`: the CFM's z [80, 2(P + T)] (upstream `randn_like(mu)`; for meanflow the generated
    ///   part is upstream's `noised_mels`), or nil for `FlowNoise(seed: noiseSeed)`.
    /// - `draws`: SineGen's phases and noise, or nil for `SplitMix64(seed: drawSeed)`.
    public func inference(tokens: [Int], reference: FlowReference, steps: Int? = nil,
                          noise: Tensor? = nil, noiseSeed: UInt64 = 0,
                          draws: SineDraws? = nil, drawSeed: UInt64 = 0, trimFade: Bool = true) throws -> Output {
        let mel = try flow.inference(tokens: tokens, reference: reference, finalize: true, steps: steps,
                                     noise: noise, seed: noiseSeed)
        return try vocode(mel: mel, draws: draws, drawSeed: drawSeed, trimFade: trimFade)
    }

    /// HiFT + trim_fade for a flow mel [80, M] (upstream `hift_inference` then the fade).
    public func vocode(mel: Tensor, draws: SineDraws? = nil, drawSeed: UInt64 = 0, trimFade: Bool = true) throws -> Output {
        let m = mel.rank == 2 ? mel.reshaped([1, mel.shape[0], mel.shape[1]]) : mel
        let out: HiFTGenerator.Output
        if let draws {
            out = try vocoder.inference(speechFeat: m, draws: draws)
        } else {
            out = try vocoder.inference(speechFeat: m, seed: drawSeed)
        }
        let wave = out.wave.contiguous().copy()
        if trimFade { S3GenTrimFade.apply(to: wave) }
        return Output(wave: wave, mel: mel, source: out.source)
    }
}

/// The arithmetic of S3Gen's matrix products: every `Linear` and `Conv1d` of the flow encoder, the
/// CFM estimator and HiFT, and the CFM's attention products (HiFT's F0 predictor and
/// ConvTranspose1d, depthwise kernels, the encoder's attention, norms, softmax and everything
/// elementwise stay f32 in both).
public enum S3GenPrecision: String, Sendable, CaseIterable {
    /// bf16 where the CPU has avx512_bf16, f32 elsewhere.
    case auto
    /// f32 weights and activations, sgemm: the reference path, bit for bit what it was before bf16.
    case f32
    /// Weights held in bf16 (converted once at load), activations rounded to bf16 as each product
    /// packs them, f32 sums: the native `vdpbf16ps` GEMM (`gemmBF16`), twice the multiply-adds of
    /// an f32 FMA per instruction. Error budget against f32: BENCHMARKS.md, "S3Gen in bf16". On a CPU
    /// without avx512_bf16 the weights are widened back per call: correct, slower than f32, which is
    /// why `auto` does not choose it there.
    case bf16

    /// `auto` decided for this CPU (`KernelISA.current`, which `CHATTERSTREAM_ISA` may lower).
    public var resolved: S3GenPrecision {
        self == .auto ? (KernelISA.current >= .avx512bf16 ? .bf16 : .f32) : self
    }
}
