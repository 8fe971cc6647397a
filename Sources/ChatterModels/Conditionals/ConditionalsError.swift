/// Why conditionals could not be built, loaded or saved. Each case names the file or the reference.
public enum ConditionalsError: Error, Equatable, CustomStringConvertible {
    /// A conditionals file is missing a tensor, or holds one of the wrong shape, dtype or values.
    case invalidFile(path: String, tensor: String?, reason: String)
    /// The file says it is a conditionals file of a format version this build does not read.
    case unsupportedVersion(path: String, version: String, supported: Int)
    /// The reference is shorter than the model family needs (Turbo: more than 5 s).
    case referenceTooShort(path: String, seconds: Double, minimumSeconds: Double, family: String)
    /// The reference holds no sound (every sample zero, or nothing left after the silence trim).
    case silentReference(path: String)
    /// The reference has too few samples for a front end (its message).
    case referenceUnusable(path: String, reason: String)
    case invalidExaggeration(Float)

    public var description: String {
        switch self {
        case let .invalidFile(path, tensor, reason):
            "\(path): not valid conditionals\(tensor.map { " (tensor '\($0)')" } ?? ""): \(reason)"
        case let .unsupportedVersion(path, version, supported):
            "\(path): conditionals format version \(version) is not supported (this build reads version \(supported)); rebuild them from the reference audio"
        case let .referenceTooShort(path, seconds, minimum, family):
            "\(path): the reference is \(String(format: "%.2f", seconds)) s long; \(family) needs more than \(String(format: "%g", minimum)) s of speech"
        case let .silentReference(path):
            "\(path): the reference is silent; give a recording of the voice to clone"
        case let .referenceUnusable(path, reason): "\(path): the reference cannot be used (\(reason))"
        case let .invalidExaggeration(value): "exaggeration must be a finite number, got \(value)"
        }
    }
}
