import ChatterTensor
import Foundation

/// One of Perth's seven-convolution stacks (`_layers` / the encoder's `layers`): Conv(128→256, k1),
/// five Conv(256→256, k7), Conv(256→out, k1) without activation; "same" zero padding; LeakyReLU(0.01)
/// after all but the last.
struct PerthConvStack: Sendable {
    struct Layer: Sendable {
        let conv: Conv1d
        let activation: Bool
    }
    let layers: [Layer]

    init(_ weights: any WeightStore, input: Int, hidden: Int, output: Int) throws {
        var layers: [Layer] = []
        for index in 0..<7 {
            let (cin, cout, kernel) = index == 0 ? (input, hidden, 1) : index == 6 ? (hidden, output, 1) : (hidden, hidden, 7)
            layers.append(Layer(conv: try Conv1d(weights, "\(index).conv", out: cout, in: cin, kernel: kernel, padding: (kernel - 1) / 2),
                                activation: index < 6))
        }
        self.layers = layers
    }

    /// `x`: `[1, input, T]` → `[1, output, T]`.
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for layer in layers {
            h = layer.conv(h)
            if layer.activation { leakyReLUInPlace(h, slope: 0.01) }
        }
        return h
    }
}

/// PerthNet (implicit run, step 250 000): the encoder that adds a watermark residual to the 0–2 kHz
/// sub-band of a normalised magnitude spectrogram, and the three-speed decoder that scores one.
/// Built from the upstream state-dict names (`encoder.layers.N.conv.*`, `decoder.{slow,normal,fast}_layers.N.conv.*`).
public struct PerthNet: Sendable {
    /// `compute_subband_freq`: round(1025 · 2000 / 16000) = 128 bins (0 … 1984 Hz).
    public static let subband = 128
    public static let hidden = 256

    let encoder: PerthConvStack
    let slow: PerthConvStack
    let normal: PerthConvStack
    let fast: PerthConvStack

    /// Loads from a store keyed like the checkpoint's `model` dict (no `model.` prefix).
    public init(weights: any WeightStore) throws {
        encoder = try PerthConvStack(weights.scoped("encoder.layers."), input: Self.subband, hidden: Self.hidden, output: Self.subband)
        slow = try PerthConvStack(weights.scoped("decoder.slow_layers."), input: Self.subband, hidden: Self.hidden, output: 2)
        normal = try PerthConvStack(weights.scoped("decoder.normal_layers."), input: Self.subband, hidden: Self.hidden, output: 2)
        fast = try PerthConvStack(weights.scoped("decoder.fast_layers."), input: Self.subband, hidden: Self.hidden, output: 2)
    }

    /// `magmask`: frame t is active when the sum of its 1025 normalised magnitudes exceeds 5 % of
    /// the largest frame sum. `magnitude` is `[1025, frames]`.
    public static func activityMask(_ magnitude: [Float], frames: Int) -> [Float] {
        var sums = [Float](repeating: 0, count: frames)
        for b in 0..<PerthAudioProcessor.bins {
            let row = b * frames
            for t in 0..<frames { sums[t] += magnitude[row + t] }
        }
        let threshold = (sums.max() ?? 0) * 0.05
        return sums.map { $0 > threshold ? 1 : 0 }
    }

    /// The sub-band rows `[0, 128)` of `magnitude` as `[1, 128, frames]`.
    static func subbandTensor(_ magnitude: [Float], frames: Int) -> Tensor {
        Tensor(shape: [1, subband, frames], scalars: Array(magnitude[0..<(subband * frames)]))
    }

    /// `Encoder.forward`: m[0:128] += stack(m[0:128]) · mask; the bins above are untouched.
    public func encode(_ magnitude: [Float], frames: Int) -> [Float] {
        let mask = Self.activityMask(magnitude, frames: frames)
        let residual = encoder(Self.subbandTensor(magnitude, frames: frames)).scalars()
        var output = magnitude
        for b in 0..<Self.subband {
            let row = b * frames
            for t in 0..<frames { output[row + t] += residual[row + t] * mask[t] }
        }
        return output
    }

    /// `Decoder.forward`: the raw watermark score (not clipped) of a `[1025, frames]` magnitude, or
    /// nil when no frame is active in some branch (upstream divides 0 by 0 there and returns NaN) or
    /// the signal is too short for the fast branch (fewer than 2 frames).
    public func decode(_ magnitude: [Float], frames: Int) -> Float? {
        let mask = Self.activityMask(magnitude, frames: frames)
        guard mask.contains(1) else { return nil }
        let sub = Self.subbandTensor(magnitude, frames: frames)
        let slowFrames = Int(Double(frames) * 1.25), fastFrames = Int(Double(frames) * 0.75)
        guard fastFrames >= 1 else { return nil }
        var attention: [Float] = [], marks: [Float] = []
        for (stack, length) in [(slow, slowFrames), (normal, frames), (fast, fastFrames)] {
            let input = length == frames ? sub : Self.linearResample(sub, to: length)
            let output = stack(input).scalars()  // [1, 2, length]
            let branchMask = Self.nearestResample(mask, to: length)
            let total = branchMask.reduce(0, +)
            // The fast branch's nearest resampling can skip the only active frames: 0/0 upstream.
            guard total > 0 else { return nil }
            var a: Float = 0, w: Float = 0
            for t in 0..<length {
                a += output[t] * branchMask[t]
                w += output[length + t] * branchMask[t]
            }
            attention.append(a / total)
            marks.append(w / total)
        }
        let peak = attention.max()!
        let exps = attention.map { exp($0 - peak) }
        let norm = exps.reduce(0, +)
        return zip(exps, marks).reduce(0) { $0 + $1.0 / norm * $1.1 }
    }

    /// `F.interpolate(x, size, mode="linear", align_corners=True)` along time of `[1, C, T]`.
    static func linearResample(_ x: Tensor, to length: Int) -> Tensor {
        let channels = x.shape[1], frames = x.shape[2]
        let source = x.scalars()
        var output = [Float](repeating: 0, count: channels * length)
        let scale: Float = length > 1 ? Float(frames - 1) / Float(length - 1) : 0
        for t in 0..<length {
            let position = scale * Float(t)
            let i0 = min(Int(position), frames - 1)
            let i1 = min(i0 + 1, frames - 1)
            let lambda1 = position - Float(i0), lambda0 = 1 - lambda1
            for c in 0..<channels {
                output[c * length + t] = lambda0 * source[c * frames + i0] + lambda1 * source[c * frames + i1]
            }
        }
        return Tensor(shape: [1, channels, length], scalars: output)
    }

    /// `F.interpolate(mask, size, mode="nearest")`: source index min(⌊t · T / length⌋, T − 1).
    static func nearestResample(_ mask: [Float], to length: Int) -> [Float] {
        let frames = mask.count
        if length == frames { return mask }
        let scale = Float(frames) / Float(length)
        return (0..<length).map { t in mask[min(Int(Float(t) * scale), frames - 1)] }
    }
}
