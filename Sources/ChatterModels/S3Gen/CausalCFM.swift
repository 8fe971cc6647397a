import ChatterTensor
import Foundation

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
