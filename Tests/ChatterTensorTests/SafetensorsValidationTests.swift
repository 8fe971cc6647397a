import Foundation
import Testing
import TestSupport
@testable import ChatterTensor


/// Builds a safetensors file byte by byte so that every field can lie.
func safetensorsBytes(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    var headerBytes = Array(header.utf8)
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    let length = declaredLength ?? UInt64(headerBytes.count)
    return withUnsafeBytes(of: length.littleEndian, Array.init) + headerBytes + data
}

@Suite struct SafetensorsValidationTests {
    let scratch: TemporaryDirectory
    init() throws { scratch = try TemporaryDirectory() }

    /// Writes `bytes` and expects opening (and reading every tensor) to fail with a message that
    /// contains each of `fragments`.
    func expectRejected(_ bytes: [UInt8], _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let path = scratch.filePath("bad-\(UUID()).safetensors")
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            let file = try SafetensorsFile(path: path)
            Issue.record("accepted a bad file; entries \(file.entries)", sourceLocation: sourceLocation)
        } catch let error as TensorError {
            let message = error.description
            print("rejected as expected: \(message)")
            #expect(message.contains(path), "message does not name the file: \(message)", sourceLocation: sourceLocation)
            for fragment in fragments {
                #expect(message.contains(fragment), "message lacks '\(fragment)': \(message)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
        }
    }

    static let goodHeader = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"I64","shape":[1],"data_offsets":[16,24]}}"#

    @Test func acceptsTheReferenceLayout() throws {
        let path = scratch.filePath("good.safetensors")
        let values: [Float] = [1, 2, 3, 4]
        let data = values.withUnsafeBytes(Array.init) + withUnsafeBytes(of: Int64(42).littleEndian, Array.init)
        _ = FileManager.default.createFile(atPath: path, contents: Data(safetensorsBytes(header: Self.goodHeader, data: data)))
        let file = try SafetensorsFile(path: path)
        #expect(try file.tensor("a").scalars() == values)
        #expect(try file.tensor("b").integers() == [42])
    }

    @Test func rejectsTruncatedFiles() {
        expectRejected([1, 2, 3], ["shorter than the 8-byte header length"])
        let full = safetensorsBytes(header: Self.goodHeader, data: [UInt8](repeating: 0, count: 24))
        expectRejected(Array(full.prefix(full.count - 5)), ["tensor 'b'", "run past", "truncated"])
    }

    @Test func rejectsHeaderLengthPastTheEnd() {
        expectRejected(safetensorsBytes(header: Self.goodHeader, data: [UInt8](repeating: 0, count: 24), declaredLength: 10_000),
                       ["header length 10000 runs past the end"])
        expectRejected(safetensorsBytes(header: "{}", data: [], declaredLength: UInt64.max), ["exceeds"])
    }

    @Test func rejectsInvalidJSON() {
        expectRejected(safetensorsBytes(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]"#, data: [0, 0, 0, 0]),
                       ["invalid JSON"])
        expectRejected(safetensorsBytes(header: "[1, 2]", data: []), ["not a JSON object"])
        expectRejected(safetensorsBytes(header: "{\"a\u{1}\": 1}", data: []), ["control character"])
    }

    @Test func rejectsUnknownDType() {
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                       ["tensor 'w'", "unknown dtype 'F33'"])
    }

    /// `Q8_0` (our extension, weights-format.md) is read in place; a header whose byte count does not
    /// match the blocks, or whose rows are not whole blocks, is refused.
    @Test func readsQ8_0AndRejectsALyingQ8_0Header() throws {
        let block: [UInt8] = [0x00, 0x3C] + (0..<32).map { UInt8(bitPattern: Int8($0 - 16)) }  // scale 1.0 (f16 0x3C00)
        let path = scratch.filePath("q8.safetensors")
        _ = FileManager.default.createFile(atPath: path, contents: Data(safetensorsBytes(
            header: #"{"w":{"dtype":"Q8_0","shape":[2,32],"data_offsets":[0,68]}}"#, data: block + block)))
        let w = try SafetensorsFile(path: path).tensor("w")
        #expect(w.dtype == .q8_0 && w.shape == [2, 32])
        #expect(w.scalars() == (0..<64).map { Float($0 % 32 - 16) })
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"Q8_0","shape":[2,32],"data_offsets":[0,64]}}"#, data: .init(repeating: 0, count: 64)),
                       ["tensor 'w'", "needs 68 bytes", "hold 64"])
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"Q8_0","shape":[32],"data_offsets":[0,32]}}"#, data: .init(repeating: 0, count: 32)),
                       ["tensor 'w'", "needs 34 bytes", "hold 32"])
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"Q8_0","shape":[2,48],"data_offsets":[0,102]}}"#, data: .init(repeating: 0, count: 102)),
                       ["tensor 'w'", "multiple of 32"])
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"Q8_0","shape":[],"data_offsets":[0,34]}}"#, data: .init(repeating: 0, count: 34)),
                       ["tensor 'w'", "multiple of 32"])
    }

    /// The writer puts q8_0 after 4-byte types (its blocks are 34 bytes), so every f32 stays aligned,
    /// and the reader maps it back in place.
    @Test func writesQ8_0BesideAlignedFloats() throws {
        let path = scratch.filePath("mixed.safetensors")
        let q = Tensor(shape: [3, 64], scalars: (0..<192).map { Float($0) * 0.01 - 1 }).converted(to: .q8_0)
        let a = Tensor(shape: [3], scalars: [1, 2, 3]), b = Tensor(shape: [5], scalars: [4, 5, 6, 7, 8])
        let bytes = Tensor(shape: [3], dtype: .u8, values: [UInt8(1), 2, 3])
        try SafetensorsWriter.write([("a.q", q), ("b", b), ("c", bytes), ("a", a)], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.entries.map(\.name) == ["a", "b", "a.q", "c"])
        for entry in file.entries { #expect(entry.dataRange.lowerBound % entry.dtype.alignment == 0, "\(entry.name)") }
        let read = try file.tensor("a.q")
        #expect(read.dtype == .q8_0 && read.scalars() == q.scalars())
        #expect(try file.tensor("b").scalars() == [4, 5, 6, 7, 8])
    }

    @Test func rejectsShapeBytesMismatch() {
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#, data: .init(repeating: 0, count: 24)),
                       ["tensor 'w'", "needs 24 bytes", "hold 20"])
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: .init(repeating: 0, count: 4)),
                       ["tensor 'w'", "not an integer in"])
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: .init(repeating: 0, count: 4)),
                       ["tensor 'w'"])
    }

    /// An empty tensor whose other dimensions multiply past Int.max: no bytes, but row-major strides
    /// that overflowed (a trap) when the tensor was made.
    @Test func rejectsAnEmptyTensorWhoseStridesOverflow() {
        expectRejected(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[0,2147483647,2147483647,2147483647],"data_offsets":[0,0]}}"#,
                                        data: []), ["tensor 'w'", "too many elements"])
    }

    @Test func rejectsOverlappingAndOutOfRangeOffsets() {
        expectRejected(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                        data: .init(repeating: 0, count: 16)),
                       ["tensor 'b'", "overlaps tensor 'a'"])
        expectRejected(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#, data: .init(repeating: 0, count: 16)),
                       ["tensor 'a'", "run past the 16-byte data buffer"])
        expectRejected(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, data: .init(repeating: 0, count: 16)),
                       ["tensor 'a'", "not an increasing range"])
    }

    @Test func rejectsDuplicateNames() {
        expectRejected(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                                        data: .init(repeating: 0, count: 8)),
                       ["tensor 'a'", "names this tensor twice"])
    }

    @Test func readsWhatPythonSafetensorsWrites() throws {
        let fixture = try Fixture("formats/python_safetensors")
        let base = try fixture.file.tensor("f32.value").scalars()
        #expect(fixture.generator == "formats/python_safetensors")
        for name in ["f16", "bf16", "f64"] {
            let values = try fixture.file.tensor("\(name).value").scalars()
            let tolerance: Float = name == "bf16" ? 1.0 / 128 : (name == "f16" ? 1.0 / 1024 : 0)
            for (a, b) in zip(values, base) { #expect(abs(a - b) <= tolerance * max(1, abs(b))) }
        }
        #expect(try fixture.file.tensor("i64.value").integers() == [-3, 0, 1 << 40, 7])
        #expect(try fixture.file.tensor("i32.value").integers() == [-5, 9])
        #expect(try fixture.file.tensor("u8.value").integers() == [0, 255])
        #expect(try fixture.file.tensor("bool.value").integers() == [1, 0, 1])
        #expect(try fixture.file.tensor("scalar.value").shape == [])
        #expect(try fixture.file.tensor("scalar.value").scalars() == [2.5])
        #expect(try fixture.file.tensor("empty.value").shape == [0, 4])
        let transposed = try fixture.file.tensor("transposed.value")
        #expect(transposed.shape == [5, 3])
        #expect(transposed.scalars() == Tensor(shape: [3, 5], scalars: base).transposed().scalars())
    }

    /// 1,000 seeded random mutations (bit flips, byte overwrites, truncations, header-length edits,
    /// insertions) of a valid file: each must either open and read every tensor, or throw a
    /// `TensorError`. A crash fails the whole run.
    @Test func survivesOneThousandRandomMutations() throws {
        let source = scratch.filePath("source.safetensors")
        var rng = SplitMix64(seed: 0x5AFE_7E45)
        try SafetensorsWriter.write([
            ("layer.weight", Tensor(shape: [4, 3], scalars: (0..<12).map(Float.init))),
            ("layer.bias", Tensor(shape: [3], scalars: [1, 2, 3]).converted(to: .bf16)),
            ("ids", Tensor(shape: [2], dtype: .i64, values: [Int64(5), 6])),
        ], metadata: ["format": "pt"], to: source)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        var accepted = 0, rejected = 0
        for iteration in 0..<1000 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                switch rng.next() % 6 {
                case 0:  // flip a bit
                    let i = Int(rng.next() % UInt64(max(bytes.count, 1)))
                    if !bytes.isEmpty { bytes[i] ^= UInt8(1 << (rng.next() % 8)) }
                case 1:  // overwrite a header byte with an interesting character
                    let interesting: [UInt8] = Array("{}[]\",:0123456789-eE.\\ ".utf8) + [0, 0xFF, 0x80]
                    let i = Int(rng.next() % UInt64(min(bytes.count, 300)))
                    if !bytes.isEmpty { bytes[i] = interesting[Int(rng.next() % UInt64(interesting.count))] }
                case 2:  // truncate
                    bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1))))
                case 3:  // lie about the header length
                    if bytes.count >= 8 {
                        let lie = UInt64(rng.next() % 4 == 0 ? rng.next() : rng.next() % UInt64(bytes.count + 64))
                        withUnsafeBytes(of: lie.littleEndian) { for j in 0..<8 { bytes[j] = $0[j] } }
                    }
                case 4:  // insert random bytes
                    let i = Int(rng.next() % UInt64(bytes.count + 1))
                    bytes.insert(contentsOf: (0..<(1 + rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
                default:  // change a digit in the header (shapes and offsets)
                    let digits = bytes.prefix(min(bytes.count, 300)).indices.filter { (0x30...0x39).contains(bytes[$0]) }
                    if let i = digits.randomElement(using: &rng) { bytes[i] = UInt8(0x30 + rng.next() % 10) }
                }
            }
            let path = scratch.filePath("mutant-\(iteration).safetensors")
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            defer { try? FileManager.default.removeItem(atPath: path) }
            do {
                let file = try SafetensorsFile(path: path)
                for name in file.names { _ = try file.tensor(name).scalars() }
                accepted += 1
            } catch is TensorError {
                rejected += 1
            }
        }
        print("mutation test: \(accepted) mutants still valid, \(rejected) rejected with TensorError, 0 crashes")
        #expect(accepted + rejected == 1000)
        #expect(rejected > 500, "most mutants should be invalid")
    }
}
