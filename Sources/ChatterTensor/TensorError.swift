/// Errors raised by the tensor library. Each message names what was wrong and where, so that a user
/// can act on it without reading our source.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// A file could not be opened, read, mapped or written.
    case io(path: String, reason: String)
    /// A safetensors file is malformed. `tensor` is set when one entry is at fault.
    case invalidSafetensors(path: String, tensor: String?, reason: String)
    /// A PyTorch checkpoint (`torch.save` zip) is malformed, or holds something we refuse to load.
    case invalidCheckpoint(path: String, tensor: String?, reason: String)
    /// A named tensor is absent from a weight store.
    case missingTensor(path: String, tensor: String)
    /// A tensor exists but has the wrong shape for its use.
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    /// A tensor has a dtype the operation does not accept.
    case unsupportedDType(tensor: String, dtype: DType, reason: String)
    /// Arguments to an operation are inconsistent (shapes that do not broadcast, a bad axis, …).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .invalidSafetensors(path, tensor?, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .invalidSafetensors(path, nil, reason):
            return "\(path): not a valid safetensors file: \(reason)"
        case let .invalidCheckpoint(path, tensor?, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .invalidCheckpoint(path, nil, reason):
            return "\(path): not a readable PyTorch checkpoint: \(reason)"
        case let .missingTensor(path, tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case let .shapeMismatch(tensor, expected, actual):
            return "tensor '\(tensor)': expected shape \(expected), found \(actual)"
        case let .unsupportedDType(tensor, dtype, reason):
            return "tensor '\(tensor)': dtype \(dtype) not supported: \(reason)"
        case let .invalidArgument(message):
            return message
        }
    }
}
