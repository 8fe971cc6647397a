import Foundation

/// Why a `.npy` array or `.npz` archive was not read.
public struct NumpyFormatError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One array in NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), as `np.save` writes it: the magic
/// `\x93NUMPY`, a version, a header length, a Python dict literal `{'descr': '<f8', 'fortran_order':
/// False, 'shape': (n,), }`, then the elements. The elements are read in place from the bytes it was
/// parsed from (kept alive through `owner`) and converted only when asked for.
public struct NumpyArray {
    /// The dtype string, e.g. `<f8`: byte order (`<`, `>`, `|`, `=`), kind (`f`, `i`, `u`, `b`), size.
    public let descr: String
    public let fortranOrder: Bool
    public let shape: [Int]
    /// The number of elements (1 for a 0-d array).
    public let count: Int
    let kind: Character
    let itemSize: Int
    let bigEndian: Bool
    private let elements: UnsafeRawBufferPointer
    private let owner: AnyObject?

    /// Parses `bytes` (which must stay valid while `owner` lives; `owner` nil: while the caller keeps them).
    public init(bytes: UnsafeRawBufferPointer, owner: AnyObject?) throws {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard bytes.count >= 10, bytes.prefix(6).elementsEqual(magic) else {
            throw NumpyFormatError("not a .npy array (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NumpyFormatError("the .npy header is truncated") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw NumpyFormatError("unsupported .npy format version \(major).\(bytes[7])")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw NumpyFormatError("the .npy header claims \(headerLength) bytes but the array has \(bytes.count - headerStart) left (truncated?)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[headerStart..<(headerStart + headerLength)])
        guard let header = String(validating: headerBytes, as: UTF8.self) else { throw NumpyFormatError("the .npy header is not text") }
        let fields = try NumpyHeader.parse(header)
        descr = fields.descr
        fortranOrder = fields.fortranOrder
        shape = fields.shape

        let scalars = Array(descr)
        guard scalars.count >= 3, "<>|=".contains(scalars[0]), "fiub".contains(scalars[1]),
              let size = Int(String(scalars[2...])), [1, 2, 4, 8].contains(size) else {
            throw NumpyFormatError("dtype '\(descr)' is not a plain number type (only <f8-style descrs are read)")
        }
        kind = scalars[1]
        itemSize = size
        bigEndian = scalars[0] == ">"
        var elementCount = 1
        for dimension in shape {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow else { throw NumpyFormatError("shape \(shape) is not a valid array shape") }
            elementCount = product
        }
        count = elementCount
        let dataStart = headerStart + headerLength
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: size)
        guard !overflow, byteCount <= bytes.count - dataStart else {
            throw NumpyFormatError("shape \(shape) of \(descr) needs \(overflow ? "more than Int.max" : String(byteCount)) bytes but the array holds \(bytes.count - dataStart) (truncated?)")
        }
        elements = UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + byteCount)])
        self.owner = owner
    }

    /// The elements of a float64 array (either byte order), in storage order.
    public func float64Values() throws -> [Double] {
        guard kind == "f", itemSize == 8 else { throw NumpyFormatError("the array is \(descr), not float64 (<f8)") }
        return withExtendedLifetime(owner) {
            (0..<count).map { index in
                let bits = elements.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                return Double(bitPattern: bigEndian ? UInt64(bigEndian: bits) : UInt64(littleEndian: bits))
            }
        }
    }

    /// The elements of an integer array of any width and byte order, in storage order.
    public func integerValues() throws -> [Int64] {
        guard kind == "i" || kind == "u" else { throw NumpyFormatError("the array is \(descr), not an integer array") }
        return try withExtendedLifetime(owner) {
            try (0..<count).map { index in
                var raw: UInt64 = 0
                for byte in 0..<itemSize {
                    let position = bigEndian ? byte : itemSize - 1 - byte
                    raw = raw << 8 | UInt64(elements[index * itemSize + position])
                }
                if kind == "u" {
                    guard raw <= UInt64(Int64.max) else { throw NumpyFormatError("element \(index) (\(raw)) exceeds Int64") }
                    return Int64(raw)
                }
                let unused = 64 - itemSize * 8  // sign-extend from the item's width
                return Int64(bitPattern: raw << UInt64(unused)) >> Int64(unused)
            }
        }
    }
}

/// A NumPy `.npz` archive (`np.savez`): a ZIP file of `.npy` members, read in place from the mapped
/// file. Members must be stored, as `np.savez` writes them (`np.savez_compressed` deflates them;
/// refused here with a message saying so). Each member's CRC-32 is checked when it is read, as
/// Python's `zipfile` does for `np.load`, so a damaged archive is an error rather than other numbers.
public struct NumpyArchive {
    public let path: String
    let archive: ZipArchive

    public init(path: String) throws {
        self.path = path
        let mapping = try MappedFile(path: path)
        do { archive = try ZipArchive(mapping: mapping) } catch {
            throw NumpyFormatError("not a readable .npz (ZIP) archive: \(error)")
        }
    }

    /// The names `np.load(path)[name]` accepts: the members' names without `.npy`.
    public var arrayNames: [String] {
        archive.entries.map { $0.name.hasSuffix(".npy") ? String($0.name.dropLast(4)) : $0.name }
    }

    /// The array `np.load(path)[name]` returns (member `<name>.npy`, or `name` itself).
    public func array(named name: String) throws -> NumpyArray {
        guard let entry = archive.entry(named: name + ".npy") ?? archive.entry(named: name) else {
            throw NumpyFormatError("the archive has no array '\(name)' (it holds \(arrayNames.sorted()))")
        }
        guard entry.method == 0 else {
            throw NumpyFormatError("array '\(name)' is compressed (ZIP method \(entry.method), np.savez_compressed); only np.savez's stored members are read")
        }
        let bytes = archive.storedBytes(entry)
        let crc = CRC32.checksum(bytes)
        guard crc == entry.crc32 else {
            throw NumpyFormatError("array '\(name)' fails its CRC-32 check (stored \(String(entry.crc32, radix: 16)), computed \(String(crc, radix: 16))): the archive is damaged")
        }
        do { return try NumpyArray(bytes: bytes, owner: archive.mapping) } catch let error as NumpyFormatError {
            throw NumpyFormatError("array '\(name)': \(error.reason)")
        }
    }
}

/// The header dict of a `.npy` array, parsed as the Python literal it is (what `np.load` hands to
/// `ast.literal_eval`), restricted to what NumPy writes: string, bool and int-tuple values.
enum NumpyHeader {
    struct Fields {
        var descr: String
        var fortranOrder: Bool
        var shape: [Int]
    }

    private enum Token: Equatable {
        case open(Character), close(Character), colon, comma
        case string(String), word(String), integer(Int)
    }

    static func parse(_ text: String) throws -> Fields {
        var tokens = try tokenize(text)[...]
        func fail(_ reason: String) -> NumpyFormatError { NumpyFormatError("the .npy header \(text.debugDescription) \(reason)") }
        func next() throws -> Token {
            guard let token = tokens.popFirst() else { throw fail("ends early") }
            return token
        }
        guard try next() == .open("{") else { throw fail("is not a dict") }
        var descr: String?, fortranOrder: Bool?, shape: [Int]?
        while true {
            var token = try next()
            if token == .close("}") { break }
            guard case let .string(key) = token else { throw fail("has a key that is not a string") }
            guard try next() == .colon else { throw fail("lacks a ':' after '\(key)'") }
            switch key {
            case "descr":
                guard case let .string(value) = try next() else { throw fail("has a 'descr' that is not a string (structured dtypes are not read)") }
                descr = value
            case "fortran_order":
                switch try next() {
                case .word("True"): fortranOrder = true
                case .word("False"): fortranOrder = false
                default: throw fail("has a 'fortran_order' that is not True or False")
                }
            case "shape":
                guard try next() == .open("(") else { throw fail("has a 'shape' that is not a tuple") }
                var dimensions: [Int] = []
                while true {
                    token = try next()
                    if token == .close(")") { break }
                    guard case let .integer(dimension) = token else { throw fail("has a non-integer dimension") }
                    dimensions.append(dimension)
                    token = try next()
                    if token == .close(")") { break }
                    guard token == .comma else { throw fail("has a malformed shape tuple") }
                }
                shape = dimensions
            default:
                throw fail("has the unexpected key '\(key)'")
            }
            token = try next()
            if token == .close("}") { break }
            guard token == .comma else { throw fail("has a malformed entry after '\(key)'") }
        }
        guard tokens.isEmpty else { throw fail("has text after the dict") }
        guard let descr, let fortranOrder, let shape else { throw fail("lacks one of 'descr', 'fortran_order', 'shape'") }
        return Fields(descr: descr, fortranOrder: fortranOrder, shape: shape)
    }

    private static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        var characters = Array(text)[...]
        while let character = characters.first {
            switch character {
            case " ", "\n", "\t", "\r": characters.removeFirst()
            case "{", "(": tokens.append(.open(character)); characters.removeFirst()
            case "}", ")": tokens.append(.close(character)); characters.removeFirst()
            case ":": tokens.append(.colon); characters.removeFirst()
            case ",": tokens.append(.comma); characters.removeFirst()
            case "'", "\"":
                characters.removeFirst()
                guard let end = characters.firstIndex(of: character) else { throw NumpyFormatError("the .npy header has an unterminated string") }
                let value = String(characters[..<end])
                guard !value.contains("\\") else { throw NumpyFormatError("the .npy header has an escaped string") }
                tokens.append(.string(value))
                characters = characters[characters.index(after: end)...]
            case "0"..."9":
                let digits = characters.prefix(while: { $0.isASCII && $0.isNumber })
                guard let value = Int(String(digits)) else { throw NumpyFormatError("the .npy header has an out-of-range number") }
                tokens.append(.integer(value))
                characters = characters.dropFirst(digits.count)
            case "A"..."Z", "a"..."z":
                let word = characters.prefix(while: { $0.isASCII && $0.isLetter })
                tokens.append(.word(String(word)))
                characters = characters.dropFirst(word.count)
            default:
                throw NumpyFormatError("the .npy header has the unexpected character \(String(character).debugDescription)")
            }
        }
        return tokens
    }
}

/// CRC-32 (ISO-HDLC, ZIP's), table-driven.
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
