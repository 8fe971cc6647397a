import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator. The engine's default
/// random draws (T3 sampling uniforms, HiFT's SineGen phases and noise) and the tests use it, so a
/// seed means the same numbers everywhere; `mix` is its output function on its own, for
/// counter-based draws (CFM noise indexed by absolute frame).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.finalize(state)
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// The generator's output for the counter value `value` (what `next()` returns from state
    /// `value`): a stateless hash with SplitMix64's statistical quality.
    public static func mix(_ value: UInt64) -> UInt64 { finalize(value &+ increment) }

    /// A standard normal that is a pure function of (`seed`, `index`): counter-based, so streams of
    /// noise can be indexed (by frame, by sample) instead of drawn in order. Box–Muller over two
    /// mixed uniforms, u1 ∈ (0, 1], u2 ∈ [0, 1).
    public static func gaussian(seed: UInt64, index: UInt64) -> Float {
        let a = mix(seed ^ mix(index &* 2))
        let b = mix(seed ^ mix(index &* 2 &+ 1))
        let u1 = (Double(a >> 11) + 1) / 9_007_199_254_740_993.0
        let u2 = Double(b >> 11) / 9_007_199_254_740_992.0
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
