/// Why a conversion (or opening a converted model) failed. Messages name the file and tensor.
public enum ConversionError: Error, CustomStringConvertible, Equatable {
    case unknownCheckpointDirectory(String, found: [String])
    case missingFile(directory: String, file: String)
    case notPublished(file: String, detail: String)
    case missingTensor(file: String, tensor: String)
    case wrongShape(file: String, tensor: String, expected: [Int], actual: [Int])
    case wrongDType(file: String, tensor: String, expected: String, actual: String)
    case unexpectedTensor(file: String, tensor: String)
    case outputExists(String)
    case notAConvertedModel(String, String)
    case io(String)
    case unsupportedDType(group: String, dtype: String, supported: [String])

    public var description: String {
        switch self {
        case let .unknownCheckpointDirectory(path, found):
            return "\(path): not an upstream Chatterbox checkpoint directory (expected t3_cfg.safetensors, t3_turbo_v1.safetensors or t3_mtl23ls_v2.safetensors; found \(found.isEmpty ? "nothing" : found.joined(separator: ", ")))"
        case let .missingFile(directory, file):
            return "\(directory): \(file) is missing (download the whole checkpoint directory)"
        case let .notPublished(file, detail):
            return "\(file): \(detail)"
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is missing"
        case let .wrongShape(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case let .wrongDType(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has dtype \(actual), expected \(expected)"
        case let .unexpectedTensor(file, tensor):
            return "\(file): unexpected tensor '\(tensor)' (not in the published checkpoint; --strict refuses it)"
        case let .unsupportedDType(group, dtype, supported):
            return "the \(group) weights cannot be stored as \(dtype) (supported: \(supported.joined(separator: ", ")))"
        case let .outputExists(path):
            return "\(path) already exists; pass --force to replace it"
        case let .notAConvertedModel(path, reason):
            return "\(path): not a converted chatterstream model: \(reason)"
        case let .io(message):
            return message
        }
    }
}
