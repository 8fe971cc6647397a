import Foundation
import Testing
import ChatterTensor

/// (Copied from ChatterTensorTests/Support/Fixture.swift with flow-specific names, so branches do not
/// collide.) A parity fixture written by `tools/fixtures/generate.py`: one safetensors file holding, for each
/// case, tensors `<case>.<role>`, and in `__metadata__["fixture"]` a JSON object with the
/// generator name, the torch version and the cases with their parameters.
struct FlowFixture {
    struct Case: CustomStringConvertible {
        let name: String
        let params: [String: Any]
        var description: String { name }

        func int(_ key: String) -> Int { (params[key] as! NSNumber).intValue }
        func double(_ key: String) -> Double { (params[key] as! NSNumber).doubleValue }
        func float(_ key: String) -> Float { Float(double(key)) }
        func bool(_ key: String) -> Bool { (params[key] as! NSNumber).boolValue }
        func string(_ key: String) -> String { params[key] as! String }
        func ints(_ key: String) -> [Int] { (params[key] as! [NSNumber]).map(\.intValue) }
        func optionalInt(_ key: String) -> Int? { (params[key] as? NSNumber)?.intValue }
        func has(_ key: String) -> Bool { params[key] != nil && !(params[key] is NSNull) }
    }

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    let name: String
    let file: SafetensorsFile
    let cases: [Case]
    /// The fixture name recorded by the generator, and the torch version that computed it.
    let generator: String
    let torchVersion: String

    /// Loads `Tests/Fixtures/<name>.safetensors`, e.g. `Fixture("ops/conv1d")`.
    init(_ name: String) throws {
        self.name = name
        file = try SafetensorsFile(path: Self.root.appendingPathComponent(name + ".safetensors").path)
        let info = try JSONSerialization.jsonObject(with: Data((file.metadata["fixture"] ?? "{}").utf8)) as! [String: Any]
        generator = info["generator"] as? String ?? ""
        torchVersion = info["torch"] as? String ?? ""
        let json = info["cases"] as? [[String: Any]] ?? []
        cases = json.map { Case(name: $0["name"] as! String, params: $0["params"] as? [String: Any] ?? [:]) }
    }

    func tensor(_ testCase: Case, _ role: String) throws -> Tensor {
        try file.tensor("\(testCase.name).\(role)")
    }

    func has(_ testCase: Case, _ role: String) -> Bool { file.contains("\(testCase.name).\(role)") }
}

/// The parity measure used throughout: max |actual − expected| / max |expected|.
struct FlowParityError: CustomStringConvertible {
    let maxAbsoluteError: Float
    let maxReference: Float
    var relative: Float { maxReference > 0 ? maxAbsoluteError / maxReference : maxAbsoluteError }
    var description: String {
        "max|err| \(String(format: "%.3e", maxAbsoluteError)), max|ref| \(String(format: "%.3e", maxReference)), relative \(String(format: "%.3e", relative))"
    }

    init(_ actual: [Float], _ expected: [Float]) {
        precondition(actual.count == expected.count, "comparing \(actual.count) values with \(expected.count)")
        var maxError: Float = 0, maxRef: Float = 0
        for (a, e) in zip(actual, expected) {
            let error = abs(a - e)
            maxError = (error.isNaN || maxError.isNaN) ? .nan : max(maxError, error)
            maxRef = max(maxRef, abs(e))
        }
        maxAbsoluteError = maxError
        maxReference = maxRef
    }
}

/// Checks `actual` against `expected` with a relative tolerance (on the scale of `expected`), prints
/// the error seen, and records a test issue if it is over tolerance or NaN.
@discardableResult
func expectFlowParity(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ label: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> FlowParityError {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs reference \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return FlowParityError([], []) }
    return expectFlowParity(actual.scalars(), expected.scalars(), tolerance: tolerance, label, sourceLocation: sourceLocation)
}

@discardableResult
func expectFlowParity(_ actual: [Float], _ expected: [Float], tolerance: Float, _ label: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> FlowParityError {
    let error = FlowParityError(actual, expected)
    print("parity \(label): \(error) (tolerance \(tolerance))")
    #expect(!error.relative.isNaN && error.relative <= tolerance, "\(label): \(error) exceeds \(tolerance)", sourceLocation: sourceLocation)
    return error
}
