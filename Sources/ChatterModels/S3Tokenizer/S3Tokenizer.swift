import ChatterAudio
import ChatterTensor
import Foundation

/// S3TokenizerV2's shape. Upstream's rotary table is fixed at 64 dimensions, so `state / heads` must be 64.
public struct S3TokenizerConfig: Sendable, Equatable {
    public var melBands = 128
    public var state = 1280
    public var heads = 20
    public var layers = 6
    public var fsmnKernel = 31

    public init(melBands: Int = 128, state: Int = 1280, heads: Int = 20, layers: Int = 6, fsmnKernel: Int = 31) {
        self.melBands = melBands
        self.state = state
        self.heads = heads
        self.layers = layers
        self.fsmnKernel = fsmnKernel
    }

    /// `speech_tokenizer_v2_25hz` as Chatterbox ships it.
    public static let v2 = S3TokenizerConfig()

    /// The shape of the weights in `store` (unprefixed keys): width from `encoder.conv1.weight`,
    /// heads = width / 64 (upstream's fixed rotary size), layers by counting blocks.
    public static func inferred(from store: any WeightStore) throws -> S3TokenizerConfig {
        let conv1: Tensor
        do { conv1 = try store.tensor("encoder.conv1.weight") } catch { throw S3TokenizerError.invalidWeights("\(error)") }
        guard conv1.rank == 3, conv1.shape[0] % 64 == 0, conv1.shape[0] > 0 else {
            throw S3TokenizerError.invalidWeights("encoder.conv1.weight has shape \(conv1.shape), expected [64·heads, mels, 3]")
        }
        var layers = 0
        while store.contains("encoder.blocks.\(layers).attn_ln.weight") { layers += 1 }
        return S3TokenizerConfig(melBands: conv1.shape[1], state: conv1.shape[0], heads: conv1.shape[0] / 64, layers: layers)
    }
}

public enum S3TokenizerError: Error, Equatable, CustomStringConvertible {
    case emptyAudio
    /// torch.stft's reflect padding of 200 samples needs more than 200 samples.
    case audioTooShort(samples: Int, minimum: Int)
    case invalidMaxLength(Int)
    case invalidConfig(String)
    /// A weight is missing or has the wrong shape (the underlying message).
    case invalidWeights(String)

    public var description: String {
        switch self {
        case .emptyAudio: "S3Tokenizer: empty audio"
        case let .audioTooShort(samples, minimum):
            "S3Tokenizer: audio of \(samples) samples is too short (at least \(minimum) at 16 kHz)"
        case let .invalidMaxLength(n): "S3Tokenizer: max_len must be positive, got \(n)"
        case let .invalidConfig(why): "S3Tokenizer: invalid config: \(why)"
        case let .invalidWeights(why): "S3Tokenizer: invalid weights: \(why)"
        }
    }
}

/// Chatterbox's `S3Tokenizer` (s3tokenizer's `S3TokenizerV2`, speech_tokenizer_v2_25hz): 16 kHz speech →
/// Whisper-style log-mel (100 Hz) → AudioEncoderV2 (two stride-2 convs, rotary + FSMN attention blocks)
/// → FSQ (3^8 = 6561 codes) → 25 Hz speech tokens. One utterance at a time, unpadded (upstream's length
/// masks make a padded batch equal to this at the valid positions).
public struct S3Tokenizer: Sendable {
    public static let sampleRate = 16_000
    public static let nFFT = 400
    public static let hop = 160
    public static let codebookSize = 6561
    /// Mel frames above which upstream `quantize` splits into 30 s windows every 26 s.
    public static let maxFrames = 3000
    static let windowStride = 2600
    /// Tokens dropped on each side of a window join ((4 s // 2) · 25 Hz).
    static let overlapTokens = 50

    /// One encoder block (`encoder.blocks.{i}.`).
    struct Block: Sendable {
        let attnLN: LayerNorm
        let query: Linear
        let key: Linear
        let value: Linear
        let out: Linear
        /// `attn.fsmn_block.weight` [C, 1, K]: a depthwise convolution without bias.
        let fsmn: Tensor
        let mlpLN: LayerNorm
        let mlp1: Linear
        let mlp2: Linear

        /// `p`: the block's key prefix (kept in full so that errors name the whole key).
        init(_ weights: some WeightStore, _ p: String, state c: Int, fsmnKernel: Int) throws {
            attnLN = try LayerNorm(weights, p + "attn_ln.", features: c, eps: 1e-5)
            query = try Linear(weights, p + "attn.query.", out: c, in: c)
            key = try Linear(weights, p + "attn.key.", out: c, in: c, bias: false)
            value = try Linear(weights, p + "attn.value.", out: c, in: c)
            out = try Linear(weights, p + "attn.out.", out: c, in: c)
            fsmn = try weights.float32(p + "attn.fsmn_block.weight", shape: [c, 1, fsmnKernel])
            mlpLN = try LayerNorm(weights, p + "mlp_ln.", features: c, eps: 1e-5)
            mlp1 = try Linear(weights, p + "mlp.0.", out: 4 * c, in: c)
            mlp2 = try Linear(weights, p + "mlp.2.", out: c, in: 4 * c)
        }
    }

    public let config: S3TokenizerConfig
    /// [128, 201] Slaney mel filters (`_mel_filters`).
    public let melFilters: Tensor
    let window: Tensor
    let conv1, conv2: Conv1d
    let blocks: [Block]
    let projectDown: Linear
    let rotary = RotaryEmbedding(headDim: 64, theta: 10000)

    /// Loads from a store addressed without the `tokenizer.` prefix (`checkpoint.scoped("tokenizer.")`).
    /// `_mel_filters` is taken from the store when present, else recomputed (librosa slaney, 128 × 201).
    public init(_ weights: any WeightStore, config: S3TokenizerConfig = .v2) throws {
        guard config.heads > 0, config.state == config.heads * 64 else {
            throw S3TokenizerError.invalidConfig("state \(config.state) must be heads \(config.heads) × 64")
        }
        guard config.layers >= 0, config.fsmnKernel % 2 == 1 else {
            throw S3TokenizerError.invalidConfig("layers \(config.layers), FSMN kernel \(config.fsmnKernel) (must be odd)")
        }
        self.config = config
        let c = config.state, m = config.melBands, bins = Self.nFFT / 2 + 1
        do {
            func w(_ key: String, _ shape: [Int]) throws -> Tensor { try weights.float32(key, shape: shape) }
            if weights.contains("_mel_filters") {
                melFilters = try w("_mel_filters", [m, bins])
            } else {
                melFilters = Tensor(shape: [m, bins], scalars: MelFilterbank.make(sampleRate: Self.sampleRate, nFFT: Self.nFFT, nMels: m))
            }
            conv1 = try Conv1d(weights, "encoder.conv1", out: c, in: m, kernel: 3, weightNormed: false, stride: 2, padding: 1)
            conv2 = try Conv1d(weights, "encoder.conv2", out: c, in: c, kernel: 3, weightNormed: false, stride: 2, padding: 1)
            blocks = try (0..<config.layers).map { i in
                try Block(weights, "encoder.blocks.\(i).", state: c, fsmnKernel: config.fsmnKernel)
            }
            projectDown = try Linear(weights, "quantizer._codebook.project_down.", out: 8, in: c)
        } catch let error as S3TokenizerError {
            throw error
        } catch {
            throw S3TokenizerError.invalidWeights("\(error)")
        }
        // torch.hann_window(400): periodic.
        window = Tensor(shape: [Self.nFFT], scalars: (0..<Self.nFFT).map { n in
            Float(0.5 - 0.5 * cos(2 * Double.pi * Double(n) / Double(Self.nFFT)))
        })
    }

    // MARK: Front end

    /// `S3Tokenizer.log_mel_spectrogram`: |STFT|² (n_fft 400, hop 160, periodic Hann, centred, reflect;
    /// last frame dropped) → mel → log10(max(·, 1e-10)) → max(·, max − 8) → (· + 4) / 4. [128, ⌊L/160⌋].
    public func logMelSpectrogram(_ audio: [Float]) throws -> Tensor {
        guard !audio.isEmpty else { throw S3TokenizerError.emptyAudio }
        let minimum = Self.nFFT / 2 + 1
        guard audio.count >= minimum else { throw S3TokenizerError.audioTooShort(samples: audio.count, minimum: minimum) }
        let spectrum = stft(Tensor(shape: [audio.count], scalars: audio), nFFT: Self.nFFT, hopLength: Self.hop,
                            window: window).contiguous()
        let bins = spectrum.shape[0], frames = spectrum.shape[1] - 1
        var power = [Float](repeating: 0, count: bins * frames)
        spectrum.withUnsafeFloats { s in
            for b in 0..<bins {
                for t in 0..<frames {
                    let re = s[(b * (frames + 1) + t) * 2], im = s[(b * (frames + 1) + t) * 2 + 1]
                    let magnitude = (re * re + im * im).squareRoot()
                    power[b * frames + t] = magnitude * magnitude
                }
            }
        }
        var mel = matmul(melFilters, Tensor(shape: [bins, frames], scalars: power)).scalars()
        var peak = -Float.infinity
        for i in mel.indices {
            mel[i] = log10(max(mel[i], 1e-10))
            peak = max(peak, mel[i])
        }
        for i in mel.indices { mel[i] = (max(mel[i], peak - 8) + 4) / 4 }
        return Tensor(shape: [config.melBands, frames], scalars: mel)
    }

    // MARK: Encoder and quantiser

    /// AudioEncoderV2 on one unpadded mel [128, T] → hidden [⌈T/4⌉, state]. T ≤ 8192 (rotary table of 2048).
    public func encode(mel: Tensor) -> Tensor {
        precondition(mel.rank == 2 && mel.shape[0] == config.melBands, "S3Tokenizer.encode expects [\(config.melBands), T], got \(mel.shape)")
        let c = config.state, h = config.heads
        var x = (mel.dtype == .f32 ? mel : mel.converted(to: .f32)).contiguous().reshaped([1, config.melBands, mel.shape[1]])
        x = gelu(conv1(x))
        x = gelu(conv2(x))
        let t = x.shape[2]
        precondition(t <= 2048, "S3Tokenizer: \(t) encoder positions exceed upstream's rotary table of 2048")
        x = x.reshaped([c, t]).transposed(0, 1).copy()  // [T, C]
        let pad = (config.fsmnKernel - 1) / 2
        for block in blocks {
            let normed = block.attnLN(x)
            let q = block.query(normed)
            let k = block.key(normed)
            let v = block.value(normed)
            // FSMN memory: depthwise conv over time of the un-rotated v, plus v.
            let memory = conv1d(v.transposed(0, 1).contiguous().reshaped([1, c, t]), weight: block.fsmn,
                                padding: pad, groups: c)
            let fsmn = add(memory.reshaped([c, t]).transposed(0, 1).contiguous(), v)
            func heads(_ a: Tensor) -> Tensor { a.reshaped([1, t, h, 64]).permuted([0, 2, 1, 3]).contiguous() }
            let attended = scaledDotProductAttention(query: rotary.apply(heads(q)), key: rotary.apply(heads(k)),
                                                     value: heads(v), scale: 0.125)
            let merged = attended.permuted([0, 2, 1, 3]).contiguous().reshaped([t, c])
            x = add(x, add(block.out(merged), fsmn))
            let hidden = gelu(block.mlp1(block.mlpLN(x)))
            x = add(x, block.mlp2(hidden))
        }
        return x
    }

    /// FSQ: round(tanh(x·Wᵀ + b)·0.999) (half to even) + 1 as base-3 digits, dimension 0 least significant.
    public func quantize(hidden: Tensor) -> [Int] {
        let z = projectDown(hidden).scalars()
        return (0..<(z.count / 8)).map { row in
            var token = 0, power = 1
            for i in 0..<8 {
                let u = (Foundation.tanh(z[row * 8 + i]) * 0.9990000128746033).rounded(.toNearestOrEven)
                // tanh bounds u to −1…1; only a NaN projection (from non-finite audio) escapes, and
                // must not reach Int(_:). It takes the middle digit; builders refuse such audio first.
                token += (u.isNaN ? 1 : Int(u) + 1) * power
                power *= 3
            }
            return token
        }
    }

    /// Upstream `quantize` for one mel [128, T]: T ≤ 3000 encodes whole; longer mel is cut into windows
    /// of 3000 frames every 2600, each encoded alone, and merged dropping 50 tokens at each inner join.
    public func tokens(mel: Tensor) -> [Int] {
        let frames = mel.shape[1]
        if frames <= Self.maxFrames { return quantize(hidden: encode(mel: mel)) }
        var segments: [[Int]] = []
        var start = 0
        while start < frames {
            let end = min(start + Self.maxFrames, frames)
            segments.append(quantize(hidden: encode(mel: mel.slice(1, start..<end).contiguous())))
            start += Self.windowStride
        }
        return Self.merge(segments)
    }

    /// s3tokenizer's `merge_tokenized_segments` (overlap 4 s, 25 Hz), Python slice semantics.
    static func merge(_ segments: [[Int]]) -> [Int] {
        var merged: [Int] = []
        for (i, tokens) in segments.enumerated() {
            let lower = i == 0 ? 0 : overlapTokens
            let upper = i == segments.count - 1 ? tokens.count : max(0, tokens.count - overlapTokens)
            if lower < upper { merged += tokens[min(lower, tokens.count)..<upper] }
        }
        return merged
    }

    /// Chatterbox `S3Tokenizer.forward` for one 16 kHz wav: log-mel of the whole wav, then the first
    /// `maxLength · 4` frames when given, then `tokens(mel:)`. ⌈T/4⌉ tokens (T = ⌊L/160⌋) for short audio.
    public func tokenize(_ audio: [Float], maxLength: Int? = nil) throws -> [Int] {
        if let maxLength, maxLength <= 0 { throw S3TokenizerError.invalidMaxLength(maxLength) }
        var mel = try logMelSpectrogram(audio)
        if let maxLength, mel.shape[1] / 4 >= maxLength, mel.shape[1] > maxLength * 4 { mel = mel.slice(1, 0..<(maxLength * 4)).contiguous() }
        return tokens(mel: mel)
    }
}
