/// Inputs the spectral front ends cannot process.
public enum AudioFrontEndError: Error, Equatable, CustomStringConvertible {
    /// The signal is too short for the transform (reflect padding needs more samples than the pad).
    case signalTooShort(samples: Int, minimum: Int, stage: String)

    public var description: String {
        switch self {
        case .signalTooShort(let samples, let minimum, let stage):
            "\(stage): signal of \(samples) samples is too short (at least \(minimum) needed)"
        }
    }
}
