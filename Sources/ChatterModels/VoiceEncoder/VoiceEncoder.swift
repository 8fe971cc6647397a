import ChatterAudio
import ChatterTensor
import Foundation

/// Why the VoiceEncoder could not embed a waveform.
public enum VoiceEncoderError: Error, CustomStringConvertible, Equatable {
    /// Fewer samples (after the silence trim) than one STFT window: there is nothing to embed.
    /// Upstream zero-pads partial windows, so anything from `minimum` samples up is accepted.
    case tooShort(samples: Int, minimum: Int)
    /// The waveform is digital silence (all zeros), or its embedding has zero norm after the ReLU;
    /// upstream would divide by zero and return NaN.
    case silent

    public var description: String {
        switch self {
        case let .tooShort(samples, minimum):
            "VoiceEncoder: \(samples) samples after trimming silence; at least \(minimum) are needed"
        case .silent: "VoiceEncoder: the reference audio is silent (the embedding would be NaN)"
        }
    }
}

/// Resemble's speaker encoder (`chatterbox.models.voice_encoder.VoiceEncoder`), which gives T3 its
/// 256-d speaker embedding: a 40-band linear power mel of 16 kHz audio, cut into 160-frame partial
/// windows, each through a 3-layer LSTM, a Linear + ReLU projection and L2 normalisation; the mean
/// of the partial embeddings, L2-normalised again, is the utterance embedding
/// (`embeds_from_wavs(..., trim_top_db=20, rate=1.3)`).
///
/// The hidden and embedding sizes are read from the weights (256 and 256 in every checkpoint).
public struct VoiceEncoder: Sendable {
    public static let sampleRate = 16_000
    public static let melBands = 40
    public static let nFFT = 400
    public static let hopLength = 160
    /// Frames per partial window (1.6 s).
    public static let partialFrames = 160

    let lstm: LSTM
    /// `proj`: hidden → embedding.
    let proj: Linear
    public var hiddenSize: Int { lstm.hiddenSize }
    public var embeddingSize: Int { proj.outFeatures }

    private let melBasis: Tensor  // [40, 201]
    private let window: Tensor    // periodic Hann(400)

    /// Loads `lstm.*` and `proj.*` (the keys of `ve.safetensors`; `similarity_*` are training-only
    /// and ignored). Throws `TensorError` for a missing or wrong-shaped tensor.
    public init(weights: any WeightStore) throws {
        let hidden = try weights.tensor("lstm.weight_hh_l0").shape.last ?? 0
        guard hidden > 0 else {
            throw TensorError.invalidArgument("\(weights.source): lstm.weight_hh_l0 has no hidden size")
        }
        let embed = try weights.tensor("proj.weight").shape.first ?? 0
        lstm = try LSTM(weights, "lstm.", layers: 3, inputSize: Self.melBands, hiddenSize: hidden)
        proj = try Linear(weights, "proj.", out: embed, in: hidden)
        let bins = Self.nFFT / 2 + 1
        melBasis = Tensor(shape: [Self.melBands, bins],
                          scalars: MelFilterbank.make(sampleRate: Self.sampleRate, nFFT: Self.nFFT, nMels: Self.melBands,
                                                      fMin: 0, fMax: 8000))
        window = Tensor(shape: [Self.nFFT], scalars: (0..<Self.nFFT).map {
            Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(Self.nFFT)))
        })
    }

    /// The speaker embedding `[embeddingSize]` of 16 kHz `samples` (resample other rates first;
    /// upstream uses librosa's kaiser_fast there). `trimTopDB` nil skips the silence trim.
    public func embed(_ samples: [Float], trimTopDB: Float? = 20, rate: Double = 1.3) throws -> Tensor {
        guard samples.contains(where: { $0 != 0 }) else { throw VoiceEncoderError.silent }
        var audio = samples
        if let trimTopDB {
            audio = Array(samples[Self.trimSilence(samples, topDB: trimTopDB)])
        }
        return try embed(mel: try melSpectrogram(audio), rate: rate)
    }

    /// The utterance embedding of a mel `[T, 40]` (`embeds_from_mels` for one utterance).
    public func embed(mel: Tensor, rate: Double = 1.3) throws -> Tensor {
        let partials = try partialEmbeddings(mel: mel, rate: rate)
        let (count, width) = (partials.shape[0], partials.shape[1])
        let values = partials.scalars()
        var mean = [Float](repeating: 0, count: width)
        for i in 0..<count { for j in 0..<width { mean[j] += values[i * width + j] } }
        for j in 0..<width { mean[j] /= Float(count) }
        return Tensor(shape: [width], scalars: try Self.l2Normalized(mean))
    }

    /// The L2-normalised embedding of every partial window `[N, embeddingSize]`.
    public func partialEmbeddings(mel: Tensor, rate: Double = 1.3) throws -> Tensor {
        guard mel.rank == 2, mel.shape[1] == Self.melBands, mel.shape[0] > 0 else {
            throw TensorError.shapeMismatch(tensor: "VoiceEncoder mel", expected: [-1, Self.melBands], actual: mel.shape)
        }
        let frames = mel.shape[0]
        let step = Self.frameStep(rate: rate)
        let (count, target) = Self.windowCount(frames: frames, step: step)
        let source = mel.contiguous().scalars()
        let bands = Self.melBands, window = Self.partialFrames
        var batch = [Float](repeating: 0, count: count * window * bands)
        for i in 0..<count {
            for t in 0..<window {
                let frame = i * step + t
                guard frame < min(frames, target) else { break }
                for b in 0..<bands { batch[(i * window + t) * bands + b] = source[frame * bands + b] }
            }
        }
        let (_, state) = lstm(Tensor(shape: [count, window, bands], scalars: batch))
        let last = state.h.slice(0, (lstm.layers.count - 1)..<lstm.layers.count).reshaped([count, hiddenSize])
        let raw = relu(proj(last)).scalars()
        var out = [Float]()
        out.reserveCapacity(raw.count)
        for i in 0..<count {
            out += try Self.l2Normalized(Array(raw[(i * embeddingSize)..<((i + 1) * embeddingSize)]))
        }
        return Tensor(shape: [count, embeddingSize], scalars: out)
    }

    /// The linear power mel `[T, 40]`, T = 1 + ⌊L/160⌋ (librosa STFT, centred, reflect padding).
    public func melSpectrogram(_ samples: [Float]) throws -> Tensor {
        guard samples.count >= Self.nFFT else {
            throw VoiceEncoderError.tooShort(samples: samples.count, minimum: Self.nFFT)
        }
        let spectrum = stft(Tensor(shape: [samples.count], scalars: samples), nFFT: Self.nFFT, hopLength: Self.hopLength,
                            winLength: Self.nFFT, window: window, center: true, padMode: .reflect)
        let (bins, frames) = (spectrum.shape[0], spectrum.shape[1])
        let complex = spectrum.contiguous().scalars()
        var power = [Float](repeating: 0, count: frames * bins)  // [T, bins]
        for k in 0..<bins {
            for t in 0..<frames {
                let re = complex[(k * frames + t) * 2], im = complex[(k * frames + t) * 2 + 1]
                // |X| then squared, as numpy does (np.abs then **2), keeps float32 rounding close.
                let magnitude = (re * re + im * im).squareRoot()
                power[t * bins + k] = magnitude * magnitude
            }
        }
        return matmul(Tensor(shape: [frames, bins], scalars: power), melBasis, transposeB: true)
    }

    // MARK: - Upstream helpers

    /// `get_frame_step(overlap, rate)`: round((16000 / rate) / 160) frames (77 at rate 1.3).
    public static func frameStep(rate: Double) -> Int {
        let step = Int((Double(sampleRate) / rate / Double(partialFrames)).rounded(.toNearestOrEven))
        return max(1, min(partialFrames, step))
    }

    /// `get_num_wins(n_frames, step, min_coverage=0.8)`: the number of partial windows and the
    /// frame count they cover (the mel is zero-padded or truncated to it).
    public static func windowCount(frames: Int, step: Int, minCoverage: Double = 0.8) -> (count: Int, target: Int) {
        var count = max(frames - partialFrames + step, 0) / step
        let remainder = max(frames - partialFrames + step, 0) % step
        if count == 0 || Double(remainder + partialFrames - step) / Double(partialFrames) >= minCoverage { count += 1 }
        return (count, partialFrames + step * (count - 1))
    }

    /// `librosa.effects.trim(y, top_db)` (frame 2048, hop 512, RMS against the loudest frame):
    /// the range of samples kept.
    public static func trimSilence(_ samples: [Float], topDB: Float = 20, frameLength: Int = 2048, hop: Int = 512) -> Range<Int> {
        let count = samples.count
        guard count > 0 else { return 0..<0 }
        let pad = frameLength / 2
        let frames = 1 + count / hop
        var power = [Float](repeating: 0, count: frames)
        for f in 0..<frames {
            var sum = 0.0
            let start = f * hop - pad
            for i in max(0, start)..<min(count, start + frameLength) {
                let x = Double(samples[i])
                sum += x * x
            }
            let rms = Float((sum / Double(frameLength)).squareRoot())
            power[f] = rms * rms
        }
        let reference = power.max() ?? 0
        let refDB = 10 * log10(max(1e-10, Double(reference)))
        let loud = power.indices.filter { 10 * log10(max(1e-10, Double(power[$0]))) - refDB > -Double(topDB) }
        guard let first = loud.first, let last = loud.last else { return 0..<0 }
        return (first * hop)..<min(count, (last + 1) * hop)
    }

    static func l2Normalized(_ v: [Float]) throws -> [Float] {
        let norm = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { throw VoiceEncoderError.silent }
        return v.map { $0 / norm }
    }
}
