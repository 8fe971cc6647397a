import ChatterTensor
import Foundation
import Testing

// A minimal copy of ChatterTensorTests' Fixture / expectParity (that target's support is not visible
// here), with HiFT-prefixed names so another copy in this target cannot collide.

/// A parity fixture written by `tools/fixtures/generate.py`: tensors `<case>.<role>` and JSON case
/// parameters in `__metadata__["fixture"]`.
struct HiFTFixture: @unchecked Sendable {  // immutable after init
    struct Case: CustomStringConvertible {
        let name: String
        let params: [String: Any]
        var description: String { name }
        func int(_ key: String) -> Int { (params[key] as! NSNumber).intValue }
    }

    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    let file: SafetensorsFile
    let cases: [Case]

    init(_ name: String) throws {
        file = try SafetensorsFile(path: Self.root.appendingPathComponent(name + ".safetensors").path)
        let info = try JSONSerialization.jsonObject(with: Data((file.metadata["fixture"] ?? "{}").utf8)) as! [String: Any]
        let json = info["cases"] as? [[String: Any]] ?? []
        cases = json.map { Case(name: $0["name"] as! String, params: $0["params"] as? [String: Any] ?? [:]) }
    }

    func `case`(_ name: String) -> Case { cases.first { $0.name == name }! }
    func tensor(_ testCase: String, _ role: String) throws -> Tensor { try file.tensor("\(testCase).\(role)") }
}

/// max |actual − expected| / max |expected|, and the SNR of actual against expected in dB.
struct HiFTParityError: CustomStringConvertible {
    let maxAbsoluteError: Float
    let maxReference: Float
    let snr: Double
    var relative: Float { maxReference > 0 ? maxAbsoluteError / maxReference : maxAbsoluteError }
    var description: String {
        "max|err| \(String(format: "%.3e", maxAbsoluteError)), max|ref| \(String(format: "%.3e", maxReference)), "
            + "relative \(String(format: "%.3e", relative)), SNR \(String(format: "%.1f", snr)) dB"
    }

    init(_ actual: [Float], _ expected: [Float]) {
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
        snr = noise.isNaN ? -.infinity : (noise == 0 ? .infinity : 10 * Foundation.log10(signal / noise))
    }
}

@discardableResult
func expectHiFTParity(_ actual: Tensor, _ expected: Tensor, tolerance: Float, _ label: String,
                      sourceLocation: SourceLocation = #_sourceLocation) -> HiFTParityError {
    #expect(actual.shape == expected.shape, "\(label): shape \(actual.shape) vs reference \(expected.shape)", sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return HiFTParityError([], []) }
    let error = HiFTParityError(actual.contiguous().scalars(), expected.contiguous().scalars())
    print("parity \(label): \(error) (tolerance \(tolerance))")
    #expect(!error.relative.isNaN && error.relative <= tolerance, "\(label): \(error) exceeds \(tolerance)", sourceLocation: sourceLocation)
    return error
}
