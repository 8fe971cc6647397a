import ChatterTensor
import Foundation

/// Standard-normal CFM noise that is a pure function of (seed, absolute decoder frame, channel):
/// frame t receives the same values however the utterance is chunked or re-decoded, so a streaming
/// caller that re-integrates a prefix sees the same z for it (what CosyVoice2's fixed noise buffer
/// achieved). Counter-based (SplitMix64 of seed ⊕ index, Box–Muller), so no state is carried.
public struct FlowNoise: Sendable, Hashable {
    public let seed: UInt64
    public let channels: Int

    public init(seed: UInt64, channels: Int = 80) {
        self.seed = seed
        self.channels = channels
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// N(0, 1) at (frame, channel).
    public func value(frame: Int, channel: Int) -> Float {
        let index = UInt64(frame) &* UInt64(channels) &+ UInt64(channel)
        let a = Self.mix(seed ^ Self.mix(index &* 2))
        let b = Self.mix(seed ^ Self.mix(index &* 2 &+ 1))
        let u1 = (Double(a >> 11) + 1) / 9_007_199_254_740_993.0  // (0, 1]
        let u2 = Double(b >> 11) / 9_007_199_254_740_992.0        // [0, 1)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// z for absolute frames `frames`: [channels, frames.count].
    public func frames(_ frames: Range<Int>) -> Tensor {
        var values = [Float](repeating: 0, count: channels * frames.count)
        for (column, frame) in frames.enumerated() {
            for c in 0..<channels { values[c * frames.count + column] = value(frame: frame, channel: c) }
        }
        return Tensor(shape: [channels, frames.count], scalars: values)
    }
}

/// The flow-matching solver (`CausalConditionalCFM`): explicit Euler from noise (t = 0) to mel
/// (t = 1). Standard: cosine grid t_k = 1 − cos(πk / 2n), CFG with rate 0.7 over a batch of two
/// rows (conditional; unconditional with mu, spks and cond zeroed). Meanflow: linear grid, no CFG,
/// the estimator also sees the step's end time r.
public struct CausalCFM: Sendable {
    public let estimator: ConditionalDecoder
    public var cfgRate: Float = 0.7

    public init(estimator: ConditionalDecoder) { self.estimator = estimator }

    /// The time grid as upstream builds it in f32: linspace(0, 1, steps + 1), cosine-warped unless
    /// meanflow.
    public static func timeGrid(steps: Int, cosine: Bool) -> [Float] {
        (0...steps).map { k in
            let t = Float(k) / Float(steps)
            return cosine ? 1 - Float(Foundation.cos(Double(t * 0.5 * Float.pi))) : t
        }
    }

    /// Integrates from `noise` [80, N] with conditioning mu [80, N], spks [80], cond [80, N].
    /// `steps`: 10 standard / 2 meanflow upstream. `onStep` sees (step, x) after each update.
    public func solve(noise: Tensor, mu: Tensor, spks: Tensor, cond: Tensor, steps: Int,
                      onStep: ((Int, Tensor) -> Void)? = nil) -> Tensor {
        let (c, n) = (noise.shape[0], noise.shape[1])
        precondition(mu.shape == [c, n] && cond.shape == [c, n] && spks.shape == [c],
                     "CFM inputs disagree: noise \(noise.shape), mu \(mu.shape), cond \(cond.shape), spks \(spks.shape)")
        let meanflow = estimator.isMeanflow
        let grid = Self.timeGrid(steps: steps, cosine: !meanflow)
        let x = noise.contiguous().copy().reshaped([1, c, n])
        let muIn: Tensor, spksIn: Tensor, condIn: Tensor
        if meanflow {
            (muIn, spksIn, condIn) = (mu.reshaped([1, c, n]), spks.reshaped([1, c]), cond.reshaped([1, c, n]))
        } else {
            muIn = concatenate([mu.reshaped([1, c, n]), Tensor(zeros: [1, c, n])], axis: 0)
            spksIn = concatenate([spks.reshaped([1, c]), Tensor(zeros: [1, c])], axis: 0)
            condIn = concatenate([cond.reshaped([1, c, n]), Tensor(zeros: [1, c, n])], axis: 0)
        }
        for step in 0..<steps {
            let (t, r) = (grid[step], grid[step + 1])
            let dt = r - t
            if meanflow {
                let v = estimator(x: x, mu: muIn, spks: spksIn, cond: condIn, t: [t], r: [r])
                addInPlace(x, scale(v, by: dt))
            } else {
                let xIn = concatenate([x, x], axis: 0)
                let v = estimator(x: xIn, mu: muIn, spks: spksIn, cond: condIn, t: [t, t])
                let conditional = v.slice(0, 0..<1), unconditional = v.slice(0, 1..<2)
                let guided = sub(scale(conditional, by: 1 + cfgRate), scale(unconditional, by: cfgRate))
                addInPlace(x, scale(guided, by: dt))
            }
            onStep?(step, x.reshaped([c, n]))
        }
        return x.reshaped([c, n])
    }
}
