/// Input errors of the HiFT vocoder. Weight errors are `TensorError`s from the `WeightStore`.
public enum HiFTError: Error, Equatable, CustomStringConvertible {
    /// The mel is not [1, channels, frames] (batch 1, `channels` bins).
    case melShape(expectedChannels: Int, actual: [Int])
    /// The mel has no frames.
    case emptyMel
    /// A NaN or infinity in the mel (the first one found).
    case nonFiniteMel(channel: Int, frame: Int)
    /// `cacheSource` is longer than the source of this call (upstream raises too), or not [1, 1, C].
    case cacheSource(shape: [Int], sourceSamples: Int)
    /// Injected random draws do not fit the call.
    case draws(String)
    /// `HiFTStream.push` after the stream was finished.
    case streamFinished

    public var description: String {
        switch self {
        case let .melShape(channels, actual):
            return "HiFT: mel must be [1, \(channels), frames], got \(actual)"
        case .emptyMel:
            return "HiFT: mel has no frames"
        case let .nonFiniteMel(channel, frame):
            return "HiFT: mel holds a non-finite value at bin \(channel), frame \(frame)"
        case let .cacheSource(shape, samples):
            return "HiFT: cache_source must be [1, 1, C] with C ≤ \(samples) (the new source's length), got \(shape)"
        case let .draws(message):
            return "HiFT: \(message)"
        case .streamFinished:
            return "HiFT: the vocoder stream is finished; start a new one for a new utterance"
        }
    }
}
