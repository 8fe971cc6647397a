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

    /// N(0, 1) at (frame, channel).
    public func value(frame: Int, channel: Int) -> Float {
        SplitMix64.gaussian(seed: seed, index: UInt64(frame) &* UInt64(channels) &+ UInt64(channel))
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
