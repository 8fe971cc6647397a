import Foundation

/// A value read from MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md) by
/// `MessagePackReader`, as Python's `msgpack.unpackb(raw=False)` gives it (srsly's `read_msgpack`:
/// spacy-pkuseg's `features.msgpack`): str is decoded UTF-8 (invalid UTF-8 is an error, as Python's
/// strict decoding makes it), bin stays bytes, a map keeps its pairs in file order (a key repeated
/// in the file is kept twice here; Python's dict keeps the last value, and so must a consumer).
public indirect enum MessagePackValue: Equatable, Sendable, CustomStringConvertible {
    case none
    case bool(Bool)
    /// Every integer that fits Int64 (positive and negative); `uint` only above Int64.max.
    case int(Int64)
    case uint(UInt64)
    case float(Double)
    case string(String)
    case binary([UInt8])
    case array([MessagePackValue])
    case map([MessagePackPair])
    case ext(type: Int8, data: [UInt8])

    public var description: String {
        switch self {
        case .none: return "nil"
        case let .bool(value): return String(value)
        case let .int(value): return String(value)
        case let .uint(value): return String(value)
        case let .float(value): return String(value)
        case let .string(value): return value.debugDescription
        case let .binary(bytes): return "bin(\(bytes.count) bytes)"
        case let .array(items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case let .map(pairs): return "{" + pairs.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case let .ext(type, data): return "ext(\(type), \(data.count) bytes)"
        }
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .none: "nil"
        case .bool: "a boolean"
        case .int, .uint: "an integer"
        case .float: "a float"
        case .string: "a string"
        case .binary: "binary data"
        case .array: "an array"
        case .map: "a map"
        case .ext: "an extension value"
        }
    }
}

public struct MessagePackPair: Equatable, Sendable {
    public let key: MessagePackValue
    public let value: MessagePackValue
    public init(key: MessagePackValue, value: MessagePackValue) {
        self.key = key
        self.value = value
    }
}

/// Why MessagePack bytes were not read: the byte offset at fault and what was wrong there.
public struct MessagePackError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "MessagePack at byte \(offset): \(reason)" }
}

/// A bounds-checked MessagePack reader over bytes in memory. It is a cursor: `readValue` reads one
/// whole value, and the typed reads (`readMapHeader`, `readArrayHeader`, `readStringBytes`,
/// `readInteger`) let a consumer of a large file (spacy-pkuseg's feature table, a million strings)
/// build its own collections without an intermediate tree. Every count is checked against the bytes
/// left before anything is reserved (each element costs at least one byte), so a lying header
/// costs nothing, and nesting is capped so that a hostile file cannot exhaust the stack.
public struct MessagePackReader {
    public let bytes: [UInt8]
    public private(set) var offset = 0
    /// The deepest nesting `readValue` accepts (an array in an array is 2).
    public var maxDepth = 64

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ data: Data) { bytes = [UInt8](data) }

    public var isAtEnd: Bool { offset == bytes.count }

    /// Reads exactly one value spanning all the bytes, as `msgpack.unpackb` does (trailing bytes are
    /// its `ExtraData` error).
    public static func read(_ data: Data) throws -> MessagePackValue {
        var reader = MessagePackReader(data)
        let value = try reader.readValue()
        try reader.expectEnd()
        return value
    }

    public func fail(_ reason: String, at position: Int? = nil) -> MessagePackError {
        MessagePackError(offset: position ?? offset, reason: reason)
    }

    /// Throws unless every byte has been read.
    public func expectEnd() throws {
        guard isAtEnd else { throw fail("\(bytes.count - offset) bytes follow the value (one value is expected to fill the file)") }
    }

    // MARK: Typed reads

    /// The next value's type byte, without consuming it.
    public func peekType() throws -> UInt8 {
        guard offset < bytes.count else { throw fail("the data ends where a value was expected (truncated?)") }
        return bytes[offset]
    }

    /// A map's pair count; its pairs follow, key then value.
    public mutating func readMapHeader() throws -> Int {
        let start = offset
        let type = try readByte()
        let count: Int
        switch type {
        case 0x80...0x8F: count = Int(type & 0x0F)
        case 0xDE: count = Int(try readBigEndian(UInt16.self))
        case 0xDF: count = Int(try readBigEndian(UInt32.self))
        default: offset = start; throw fail("expected a map, found \(describeType(at: start))")
        }
        try checkCount(count, bytesEach: 2)
        return count
    }

    /// An array's element count; its elements follow.
    public mutating func readArrayHeader() throws -> Int {
        let start = offset
        let type = try readByte()
        let count: Int
        switch type {
        case 0x90...0x9F: count = Int(type & 0x0F)
        case 0xDC: count = Int(try readBigEndian(UInt16.self))
        case 0xDD: count = Int(try readBigEndian(UInt32.self))
        default: offset = start; throw fail("expected an array, found \(describeType(at: start))")
        }
        try checkCount(count, bytesEach: 1)
        return count
    }

    /// A str value's UTF-8 bytes (validated: Python decodes them strictly).
    public mutating func readStringBytes() throws -> ArraySlice<UInt8> {
        let start = offset
        let type = try readByte()
        let length: Int
        switch type {
        case 0xA0...0xBF: length = Int(type & 0x1F)
        case 0xD9: length = Int(try readByte())
        case 0xDA: length = Int(try readBigEndian(UInt16.self))
        case 0xDB: length = Int(try readBigEndian(UInt32.self))
        default: offset = start; throw fail("expected a string, found \(describeType(at: start))")
        }
        let utf8 = try take(length)
        guard Self.isValidUTF8(utf8) else { throw fail("the string's bytes are not valid UTF-8", at: start) }
        return utf8
    }

    public mutating func readString() throws -> String { String(decoding: try readStringBytes(), as: UTF8.self) }

    /// An integer value of any width; nil (nothing consumed) when the next value is not an integer.
    /// Integers above Int64.max are an error: nothing this reader serves needs them.
    public mutating func readInteger() throws -> Int64? {
        let start = offset
        switch try peekType() {
        case 0x00...0x7F, 0xE0...0xFF, 0xCC...0xD3: break
        default: return nil
        }
        guard case let .int(value) = try readValue() else {
            throw fail("integer out of the signed 64-bit range", at: start)
        }
        return value
    }

    /// Skips one value of any kind.
    public mutating func skipValue() throws { _ = try readValue() }

    // MARK: Whole values

    public mutating func readValue() throws -> MessagePackValue { try readValue(depth: 1) }

    private mutating func readValue(depth: Int) throws -> MessagePackValue {
        let start = offset
        let type = try readByte()
        switch type {
        case 0x00...0x7F: return .int(Int64(type))
        case 0xE0...0xFF: return .int(Int64(Int8(bitPattern: type)))
        case 0x80...0x8F, 0xDE, 0xDF:
            offset = start
            try checkDepth(depth)
            let count = try readMapHeader()
            var pairs: [MessagePackPair] = []
            pairs.reserveCapacity(count)
            for _ in 0..<count {
                let key = try readValue(depth: depth + 1)
                pairs.append(MessagePackPair(key: key, value: try readValue(depth: depth + 1)))
            }
            return .map(pairs)
        case 0x90...0x9F, 0xDC, 0xDD:
            offset = start
            try checkDepth(depth)
            let count = try readArrayHeader()
            var items: [MessagePackValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try readValue(depth: depth + 1)) }
            return .array(items)
        case 0xA0...0xBF, 0xD9, 0xDA, 0xDB:
            offset = start
            return .string(try readString())
        case 0xC0: return .none
        case 0xC1: offset = start; throw fail("byte 0xC1 is never used in MessagePack")
        case 0xC2: return .bool(false)
        case 0xC3: return .bool(true)
        case 0xC4: return .binary(Array(try take(Int(try readByte()))))
        case 0xC5: return .binary(Array(try take(Int(try readBigEndian(UInt16.self)))))
        case 0xC6: return .binary(Array(try take(Int(try readBigEndian(UInt32.self)))))
        case 0xC7, 0xC8, 0xC9:
            let length = type == 0xC7 ? Int(try readByte()) : type == 0xC8 ? Int(try readBigEndian(UInt16.self)) : Int(try readBigEndian(UInt32.self))
            let extType = Int8(bitPattern: try readByte())
            return .ext(type: extType, data: Array(try take(length)))
        case 0xCA: return .float(Double(Float(bitPattern: try readBigEndian(UInt32.self))))
        case 0xCB: return .float(Double(bitPattern: try readBigEndian(UInt64.self)))
        case 0xCC: return .int(Int64(try readByte()))
        case 0xCD: return .int(Int64(try readBigEndian(UInt16.self)))
        case 0xCE: return .int(Int64(try readBigEndian(UInt32.self)))
        case 0xCF:
            let value = try readBigEndian(UInt64.self)
            return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
        case 0xD0: return .int(Int64(Int8(bitPattern: try readByte())))
        case 0xD1: return .int(Int64(Int16(bitPattern: try readBigEndian(UInt16.self))))
        case 0xD2: return .int(Int64(Int32(bitPattern: try readBigEndian(UInt32.self))))
        case 0xD3: return .int(Int64(bitPattern: try readBigEndian(UInt64.self)))
        case 0xD4...0xD8:
            let extType = Int8(bitPattern: try readByte())
            return .ext(type: extType, data: Array(try take(1 << Int(type - 0xD4))))
        default:
            offset = start
            throw fail("unknown type byte 0x\(String(type, radix: 16, uppercase: true))")
        }
    }

    // MARK: Bytes

    private mutating func readByte() throws -> UInt8 {
        guard offset < bytes.count else { throw fail("the data ends inside a value (truncated?)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    private mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let raw = try take(MemoryLayout<T>.size)
        return raw.reduce(T.zero) { ($0 << 8) | T($1) }
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - offset else {
            throw fail("\(count) bytes wanted, \(bytes.count - offset) left (truncated?)")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    /// A container of `count` elements needs at least `bytesEach` bytes per element.
    private func checkCount(_ count: Int, bytesEach: Int) throws {
        guard count <= (bytes.count - offset) / bytesEach else {
            throw fail("a container claims \(count) elements but only \(bytes.count - offset) bytes are left (truncated or corrupt)")
        }
    }

    private func checkDepth(_ depth: Int) throws {
        guard depth <= maxDepth else { throw fail("containers nest deeper than \(maxDepth) levels") }
    }

    /// The kind of value whose type byte is at `position`, for error messages.
    private func describeType(at position: Int) -> String {
        switch bytes[position] {
        case 0x00...0x7F, 0xE0...0xFF, 0xCC...0xD3: return "an integer"
        case 0x80...0x8F, 0xDE, 0xDF: return "a map"
        case 0x90...0x9F, 0xDC, 0xDD: return "an array"
        case 0xA0...0xBF, 0xD9...0xDB: return "a string"
        case 0xC0: return "nil"
        case 0xC2, 0xC3: return "a boolean"
        case 0xC4...0xC6: return "binary data"
        case 0xCA, 0xCB: return "a float"
        case 0xC7...0xC9, 0xD4...0xD8: return "an extension value"
        default: return "type byte 0x\(String(bytes[position], radix: 16, uppercase: true))"
        }
    }

    static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        // ASCII fast path: most keys are ASCII.
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        return String(validating: bytes, as: UTF8.self) != nil
    }
}
