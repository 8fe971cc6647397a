import ChatterTensor
import Foundation

/// One named computation that `chatter-parity` can run: named input tensors (and string
/// parameters) in, named output tensors out. Upstream's side of the same stage is dumped by
/// `tools/fixtures`, so the two can be compared tensor by tensor without writing Swift.
protocol ParityStage: Sendable {
    /// The stage name used on the command line.
    var name: String { get }
    /// One line for `--list`.
    var summary: String { get }
    /// Input tensor names (with shapes in words) as documented in tools/README.md.
    var inputs: [String] { get }
    /// Parameter names read from the input file's `__metadata__`, with defaults in words.
    var parameters: [String] { get }
    /// Output tensor names.
    var outputs: [String] { get }
    /// Whether `--model <dir>` is required.
    var needsModel: Bool { get }

    func run(_ context: StageContext) throws -> [(name: String, tensor: Tensor)]
}

extension ParityStage {
    var parameters: [String] { [] }
    var needsModel: Bool { false }
}

/// What a stage sees: the input file, its parameters, and the model directory if given.
struct StageContext {
    let input: SafetensorsFile
    let model: URL?

    func tensor(_ name: String) throws -> Tensor { try input.tensor(name).contiguous() }
    func optionalTensor(_ name: String) throws -> Tensor? { input.contains(name) ? try tensor(name) : nil }

    func parameter(_ name: String) -> String? { input.metadata[name] }

    func int(_ name: String, default value: Int? = nil) throws -> Int {
        guard let text = parameter(name) else {
            guard let value else { throw StageError.missingParameter(name) }
            return value
        }
        guard let parsed = Int(text) else { throw StageError.badParameter(name, text, "an integer") }
        return parsed
    }

    func float(_ name: String, default value: Float? = nil) throws -> Float {
        guard let text = parameter(name) else {
            guard let value else { throw StageError.missingParameter(name) }
            return value
        }
        guard let parsed = Float(text) else { throw StageError.badParameter(name, text, "a number") }
        return parsed
    }

    func bool(_ name: String, default value: Bool) throws -> Bool {
        guard let text = parameter(name) else { return value }
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no": return false
        default: throw StageError.badParameter(name, text, "true or false")
        }
    }

    func string(_ name: String, default value: String) -> String { parameter(name) ?? value }

    /// The `--model` path, or `file` inside it when it is a directory (a converted model or an
    /// upstream checkpoint directory).
    func modelFile(_ file: String) throws -> String {
        guard let model else { throw StageError.badInput("--model is required") }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: model.path, isDirectory: &isDirectory)
        return exists && isDirectory.boolValue ? model.appendingPathComponent(file).path : model.path
    }

    /// A mono signal tensor `name` [T] (any float dtype) as samples.
    func monoSignal(_ name: String = "wav") throws -> [Float] {
        guard input.contains(name) else { throw StageError.badInput("tensor '\(name)' [T] is missing") }
        let signal = try tensor(name)
        guard signal.rank == 1 else { throw StageError.badInput("'\(name)' must be 1-D [T], got \(signal.shape)") }
        return (signal.dtype == .f32 ? signal : signal.converted(to: .f32)).scalars()
    }
}

enum StageError: Error, CustomStringConvertible {
    case unknownStage(String, known: [String])
    case missingParameter(String)
    case badParameter(String, String, String)
    case modelRequired(String)
    case badInput(String)

    var description: String {
        switch self {
        case let .unknownStage(name, known):
            return "unknown stage '\(name)'; stages: \(known.joined(separator: ", ")) (see --list)"
        case let .missingParameter(name):
            return "parameter '\(name)' is missing from the input file's __metadata__"
        case let .badParameter(name, text, expected):
            return "parameter '\(name)' is '\(text)', expected \(expected)"
        case let .modelRequired(stage):
            return "stage '\(stage)' needs --model <converted model directory>"
        case let .badInput(message):
            return "bad input: \(message)"
        }
    }
}
