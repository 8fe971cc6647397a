import Foundation
import Testing
@testable import ChatterTensor

@Suite struct SafetensorsRoundTripTests {
    @Test func writeThenReadGivesSameTensors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a.safetensors").path
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let ids = Tensor(shape: [4], dtype: .i64, values: [Int64(-1), 0, 7, Int64.max])
        try SafetensorsWriter.write([("w", a.transposed()), ("ids", ids), ("h", a.converted(to: .bf16)), ("empty", Tensor(zeros: [0, 3]))],
                                   metadata: ["format": "pt"], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(Set(file.names) == ["w", "ids", "h", "empty"])
        #expect(try file.tensor("w").scalars() == [1, 4, 2, 5, 3, 6])
        #expect(try file.tensor("w").storage.kind == .mapped)
        #expect(try file.tensor("ids").integers() == [-1, 0, 7, Int64.max])
        #expect(try file.tensor("h").dtype == .bf16)
        #expect(try file.tensor("empty").shape == [0, 3])
        #expect(throws: TensorError.missingTensor(path: path, tensor: "nope")) { try file.tensor("nope") }
        #expect(throws: TensorError.shapeMismatch(tensor: "w", expected: [2, 3], actual: [3, 2])) { try file.tensor("w", shape: [2, 3]) }
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.safetensors"])
    }
}
