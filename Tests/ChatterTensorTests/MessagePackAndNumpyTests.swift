import ChatterTensor
import Foundation
import Testing

/// The MessagePack reader (spacy-pkuseg's `features.msgpack`) against bytes Python's msgpack 1.2.4
/// writes (`msgpack.packb(value, use_bin_type=True)`), and the `.npy`/`.npz` reader (its
/// `weights.npz`), each with the damaged and lying inputs it must refuse.
@Suite struct MessagePackAndNumpyTests {
    static func bytes(_ hex: String) -> Data {
        var data = Data()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            data.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return data
    }

    @Test func readsEveryTypeAsPythonWritesIt() throws {
        let cases: [(String, MessagePackValue)] = [
            ("c0", .none), ("c3", .bool(true)), ("c2", .bool(false)), ("00", .int(0)), ("7f", .int(127)), ("cc80", .int(128)),
            ("ccff", .int(255)), ("cd0100", .int(256)), ("cdffff", .int(65535)), ("ce00010000", .int(65536)),
            ("cf0000000100000000", .int(1 << 32)), ("cf7fffffffffffffff", .int(.max)), ("cfffffffffffffffff", .uint(.max)),
            ("ff", .int(-1)), ("e0", .int(-32)), ("d0df", .int(-33)), ("d080", .int(-128)), ("d1ff7f", .int(-129)),
            ("d18000", .int(-32768)), ("d2ffff7fff", .int(-32769)), ("d3ffffffff7fffffff", .int(-2_147_483_649)),
            ("d38000000000000000", .int(.min)), ("cb3ff8000000000000", .float(1.5)), ("ca3fc00000", .float(1.5)),
            ("a161", .string("a")), ("c4020001", .binary([0, 1])), ("9201920290", .array([.int(1), .array([.int(2), .array([])])])),
            ("82a16b9201a176a26b3280", .map([MessagePackPair(key: .string("k"), value: .array([.int(1), .string("v")])),
                                             MessagePackPair(key: .string("k2"), value: .map([]))])),
            ("d40102", .ext(type: 1, data: [2])), ("c70205aabb", .ext(type: 5, data: [0xAA, 0xBB])),
        ]
        for (hex, expected) in cases { #expect(try MessagePackReader.read(Self.bytes(hex)) == expected, "\(hex)") }
        // str 8 and str 16 headers; UTF-8 kept code point for code point (no normalisation).
        #expect(try MessagePackReader.read(Self.bytes("d928" + String(repeating: "c3a9", count: 20))) == .string(String(repeating: "é", count: 20)))
        #expect(try MessagePackReader.read(Self.bytes("da012c" + String(repeating: "78", count: 300))) == .string(String(repeating: "x", count: 300)))
        let decomposed = try MessagePackReader.read(Self.bytes("a365cc81"))
        guard case let .string(text) = decomposed else { Issue.record("not a string"); return }
        #expect(Array(text.unicodeScalars) == ["e", "\u{301}"])
    }

    @Test func refusesDamagedAndLyingBytes() throws {
        func reason(_ hex: String) -> String {
            do { _ = try MessagePackReader.read(Self.bytes(hex)); return "read" } catch { return "\(error)" }
        }
        #expect(reason("") .contains("truncated"))
        #expect(reason("cd01").contains("truncated"))
        #expect(reason("a3616263ff").contains("1 bytes follow the value"))  // msgpack's ExtraData
        #expect(reason("c1").contains("never used"))
        #expect(reason("a2c328").contains("not valid UTF-8"))
        #expect(reason("a3eda080").contains("not valid UTF-8"))  // an encoded surrogate: Python refuses it too
        #expect(reason("dd7fffffff00").contains("claims 2147483647 elements"))  // no allocation for a lying count
        #expect(reason("df7fffffff").contains("claims 2147483647 elements"))
        #expect(reason("db7fffffff41").contains("truncated"))
        #expect(reason(String(repeating: "91", count: 100) + "c0").contains("deeper than 64"))
        // The typed reads name what they found instead.
        var reader = MessagePackReader(Self.bytes("92a161"))
        #expect(throws: MessagePackError.self) { _ = try reader.readMapHeader() }
        #expect(try reader.readArrayHeader() == 2)
        #expect(try reader.readInteger() == nil)
        #expect(try reader.readString() == "a")
        #expect(throws: MessagePackError.self) { _ = try MessagePackReader(Self.bytes("cfffffffffffffffff")).readIntegerCopy() }
    }

    /// A `.npy` array: version 1.0 header (or 2.0 with `wide`), then the raw elements.
    static func npy(_ header: String, _ elements: [UInt8], wide: Bool = false) -> [UInt8] {
        let text = Array(header.utf8)
        let length = text.count
        let prefix: [UInt8] = [0x93] + Array("NUMPY".utf8) + (wide ? [2, 0, UInt8(length & 0xFF), UInt8(length >> 8), 0, 0] : [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)])
        return prefix + text + elements
    }

    static func array(_ bytes: [UInt8]) throws -> (NumpyArray, [UInt8]) {
        (try bytes.withUnsafeBytes { try NumpyArray(bytes: $0, owner: nil) }, bytes)
    }

    @Test func readsNpyHeadersAndElements() throws {
        let doubles: [Double] = [1.5, -2, .infinity]
        let littleEndian = doubles.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        let bigEndian = doubles.flatMap { withUnsafeBytes(of: $0.bitPattern.bigEndian, Array.init) }
        for (header, elements, wide) in [("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }  \n", littleEndian, false),
                                         ("{\"shape\": (3,), \"descr\": \">f8\", \"fortran_order\": True}\n", bigEndian, true)] {
            let bytes = Self.npy(header, elements, wide: wide)
            let values = try bytes.withUnsafeBytes { try NumpyArray(bytes: $0, owner: nil).float64Values() }
            #expect(values == doubles)
        }
        let ints = Self.npy("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 1), }\n", [0xFE, 0xFF, 0x05, 0x00])
        let (array, _) = try Self.array(ints)
        #expect(array.shape == [2, 1] && array.count == 2)
        #expect(try ints.withUnsafeBytes { try NumpyArray(bytes: $0, owner: nil).integerValues() } == [-2, 5])
        let unsigned = Self.npy("{'descr': '>u4', 'fortran_order': False, 'shape': (), }\n", [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(try unsigned.withUnsafeBytes { try NumpyArray(bytes: $0, owner: nil).integerValues() } == [4_294_967_294])

        func reason(_ bytes: [UInt8]) -> String {
            do { _ = try bytes.withUnsafeBytes { try NumpyArray(bytes: $0, owner: nil).float64Values() }; return "read" } catch { return "\(error)" }
        }
        #expect(reason(Array("PK\u{3}\u{4}".utf8)).contains("magic"))
        #expect(reason(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", Array(littleEndian.prefix(16)))).contains("truncated"))
        #expect(reason(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }\n", [])).contains("unexpected character"))
        #expect(reason(Self.npy("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }\n", [])).contains("unexpected character"))
        #expect(reason(Self.npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }\n", [])).contains("not a plain number type"))
        #expect(reason(Self.npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n", Array(repeating: 0, count: 8))).contains("not float64"))
        #expect(reason(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n", [])).contains("not a valid array shape"))
        #expect(reason(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }\n", [])).contains("more than Int.max"))
        #expect(reason(Self.npy("{'descr': '<f8', 'shape': (1,), }\n", [])).contains("lacks"))
        #expect(reason(Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", [])).contains("unexpected key"))
        var lying = Self.npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", Array(repeating: 0, count: 8))
        lying[8] = 0xFF  // a header length past the end
        #expect(reason(lying).contains("truncated"))
    }

    @Test func crc32IsZipsChecksum() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the check value of CRC-32/ISO-HDLC.
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        #expect([UInt8]().withUnsafeBytes { CRC32.checksum($0) } == 0)
    }
}

private extension MessagePackReader {
    /// `readInteger` on a copy (the test's reader is a `let`).
    func readIntegerCopy() throws -> Int64? {
        var copy = self
        return try copy.readInteger()
    }
}
