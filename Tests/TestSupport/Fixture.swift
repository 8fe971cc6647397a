import Foundation
import Testing
import ChatterTensor

/// A parity fixture written by `tools/fixtures/generate.py`: one safetensors file holding, for each
/// case, tensors `<case>.<role>`, and in `__metadata__["fixture"]` a JSON object with the
/// generator name, the torch version and the cases with their parameters.
/// Immutable after `init` (the JSON parameters are plain values), so it may be shared.
public struct Fixture: @unchecked Sendable {
    public struct Case: CustomStringConvertible {
        public let name: String
        public let params: [String: Any]
        public var description: String { name }

        public func int(_ key: String) -> Int { (params[key] as! NSNumber).intValue }
        public func double(_ key: String) -> Double { (params[key] as! NSNumber).doubleValue }
        public func float(_ key: String) -> Float { Float(double(key)) }
        public func bool(_ key: String) -> Bool { (params[key] as! NSNumber).boolValue }
        public func string(_ key: String) -> String { params[key] as! String }
        public func ints(_ key: String) -> [Int] { (params[key] as! [NSNumber]).map(\.intValue) }
        public func optionalInt(_ key: String) -> Int? { (params[key] as? NSNumber)?.intValue }
        public func has(_ key: String) -> Bool { params[key] != nil && !(params[key] is NSNull) }
    }

    /// `Tests/Fixtures`.
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    public let name: String
    public let file: SafetensorsFile
    public let cases: [Case]
    /// The fixture name recorded by the generator, and the torch version that computed it.
    public let generator: String
    public let torchVersion: String

    /// Loads `Tests/Fixtures/<name>.safetensors`, e.g. `Fixture("ops/conv1d")`.
    public init(_ name: String) throws {
        self.name = name
        file = try SafetensorsFile(path: Self.root.appendingPathComponent(name + ".safetensors").path)
        let info = try JSONSerialization.jsonObject(with: Data((file.metadata["fixture"] ?? "{}").utf8)) as! [String: Any]
        generator = info["generator"] as? String ?? ""
        torchVersion = info["torch"] as? String ?? ""
        let json = info["cases"] as? [[String: Any]] ?? []
        cases = json.map { Case(name: $0["name"] as! String, params: $0["params"] as? [String: Any] ?? [:]) }
    }

    public func tensor(_ testCase: Case, _ role: String) throws -> Tensor {
        try file.tensor("\(testCase.name).\(role)")
    }

    /// The tensor `<case>.<role>` by case name.
    public func tensor(_ caseName: String, _ role: String) throws -> Tensor { try file.tensor("\(caseName).\(role)") }

    /// The case called `name`.
    public func `case`(_ name: String) -> Case? { cases.first { $0.name == name } }

    public func has(_ testCase: Case, _ role: String) -> Bool { file.contains("\(testCase.name).\(role)") }

    /// The values of an F64 tensor `<case>.<role>` at full precision (`scalars()` rounds to Float).
    public func doubles(_ testCase: Case, _ role: String) throws -> [Double] {
        let t = try tensor(testCase, role).contiguous()
        precondition(t.dtype == .f64, "\(testCase.name).\(role) is \(t.dtype), not F64")
        return (0..<t.count).map { (t.storage.baseAddress + t.byteOffset).load(fromByteOffset: $0 * 8, as: Double.self) }
    }
}

/// The parity measure used throughout: max |actual − expected| / max |expected|.
public struct ParityError: CustomStringConvertible {
    public let maxAbsoluteError: Float
    public let maxReference: Float
    /// Signal-to-noise ratio of `actual` against `expected`, in dB (the audio networks' measure).
    public let snr: Double
    public var relative: Float { maxReference > 0 ? maxAbsoluteError / maxReference : maxAbsoluteError }
    public var description: String {
        "max|err| \(String(format: "%.3e", maxAbsoluteError)), max|ref| \(String(format: "%.3e", maxReference)), relative \(String(format: "%.3e", relative)), SNR \(String(format: "%.1f", snr)) dB"
    }

    public init(_ actual: [Float], _ expected: [Float]) {
        precondition(actual.count == expected.count, "comparing \(actual.count) values with \(expected.count)")
        var maxError: Float = 0, maxRef: Float = 0, signal = 0.0, noise = 0.0
        for (a, e) in zip(actual, expected) {
            let error = abs(a - e)
            maxError = (error.isNaN || maxError.isNaN) ? .nan : max(maxError, error)
            maxRef = max(maxRef, abs(e))
            signal += Double(e) * Double(e)
            noise += Double(a - e) * Double(a - e)
        }
        maxAbsoluteError = maxError
        maxReference = maxRef
        snr = noise.isNaN ? -.infinity : (noise == 0 ? .infinity : 10 * log10(signal / noise))
    }
}

@discardableResult
public func expectParity(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ label: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> ParityError {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs reference \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return ParityError([], []) }
    return expectParity(actual.scalars(), expected.scalars(), tolerance: tolerance, label, sourceLocation: sourceLocation)
}

@discardableResult
public func expectParity(_ actual: [Float], _ expected: [Float], tolerance: Float, _ label: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> ParityError {
    let error = ParityError(actual, expected)
    print("parity \(label): \(error) (tolerance \(tolerance))")
    #expect(!error.relative.isNaN && error.relative <= tolerance, "\(label): \(error) exceeds \(tolerance)", sourceLocation: sourceLocation)
    return error
}
