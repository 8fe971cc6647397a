import Foundation

/// A value decoded from a Python pickle: the few types pykakasi's dictionaries hold.
///
/// Dicts keep their items in pickle order as pairs (keys may be ints or strings); strings keep
/// their code points (`[Unicode.Scalar]`), because pykakasi compares Python strings code point by
/// code point and Swift `String` equality would merge canonically equivalent spellings.
enum PlainPickleValue: Sendable {
    case none
    case int(Int)
    case string([Unicode.Scalar])
    case list([PlainPickleValue])
    case tuple([PlainPickleValue])
    case dict([(key: PlainPickleValue, value: PlainPickleValue)])
}

/// Why a pickle could not be decoded: the byte offset and what was wrong there.
struct PlainPickleError: Error, Equatable, CustomStringConvertible {
    let offset: Int
    let reason: String
    var description: String { "at byte \(offset): \(reason)" }
}

/// Decodes the subset of Python's pickle protocol (2 to 5) that plain containers of ints, strings
/// and None produce: the opcodes `pickle.dump` writes for pykakasi's `.db` files. Anything else
/// (class instances, memo references, bytes, floats) is refused with a `PlainPickleError`,
/// never executed or guessed: these files are data, and a file that needs more is not one of them.
///
/// Memo references (`BINGET`) are refused rather than supported because pickle's containers are
/// shared mutable objects and these value-typed ones are not; pykakasi's files never use them.
/// Containers nest at most `maximumDepth` deep (pykakasi's go 4 deep): a deeper value would be torn
/// down recursively and could exhaust the stack.
///
/// Why not ChatterTensor's `Unpickler` (the `torch.save` reader): it is built around torch's
/// allow-list and storages, keeps every memoised value (kanwadict4.db memoises 1 143 500, past its
/// cap of 1 000 000), has no FRAME opcode, and does not bound nesting. Folding the two into one
/// reader with a plain-data mode is a follow-up.
enum PlainPickle {
    static let maximumDepth = 32

    static func decode(_ bytes: [UInt8]) throws -> PlainPickleValue {
        var stack: [PlainPickleValue] = []
        var depths: [Int] = []  // beside `stack`: how deep each value's containers nest (scalars 0)
        var marks: [Int] = []
        var position = 0

        func fail(_ reason: String) -> PlainPickleError { PlainPickleError(offset: position, reason: reason) }

        func readBytes(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count - position else { throw fail("truncated: \(count) bytes wanted, \(bytes.count - position) left") }
            defer { position += count }
            return bytes[position..<(position + count)]
        }

        func readLittleEndian(_ count: Int) throws -> UInt64 {
            var value: UInt64 = 0
            for (shift, byte) in try readBytes(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
            return value
        }

        func readString(lengthBytes: Int) throws -> PlainPickleValue {
            let length = try readLittleEndian(lengthBytes)
            guard length <= UInt64(bytes.count - position) else { throw fail("string of \(length) bytes runs past the end") }
            let utf8 = try readBytes(Int(length))
            var scalars: [Unicode.Scalar] = []
            scalars.reserveCapacity(utf8.count)
            var iterator = utf8.makeIterator()
            var decoder = UTF8()
            decoding: while true {
                switch decoder.decode(&iterator) {
                case let .scalarValue(scalar): scalars.append(scalar)
                case .emptyInput: break decoding
                case .error: throw fail("string is not valid UTF-8")
                }
            }
            return .string(scalars)
        }

        func push(_ value: PlainPickleValue, depth: Int = 0) throws {
            guard depth <= maximumDepth else { throw fail("containers nest more than \(maximumDepth) deep") }
            stack.append(value)
            depths.append(depth)
        }

        func pop() throws -> (value: PlainPickleValue, depth: Int) {
            guard let value = stack.popLast(), let depth = depths.popLast() else { throw fail("stack underflow") }
            if let mark = marks.last, stack.count < mark { throw fail("value popped across a MARK") }
            return (value, depth)
        }

        func popToMark() throws -> (values: [PlainPickleValue], depth: Int) {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no MARK to pop to") }
            defer {
                stack.removeSubrange(mark...)
                depths.removeSubrange(mark...)
            }
            return (Array(stack[mark...]), depths[mark...].max() ?? 0)
        }

        /// Appends `items` to the list on top of the stack, without copying it (the popped enum
        /// is cleared before the array is mutated, so the array's storage stays uniquely owned).
        func extendTopList(with items: [PlainPickleValue], depth itemDepth: Int) throws {
            var (top, depth) = try pop()
            guard case var .list(elements) = top else { throw fail("APPEND to something that is not a list") }
            top = .none
            elements.append(contentsOf: items)
            try push(.list(elements), depth: max(depth, itemDepth + 1))
            _ = top
        }

        func extendTopDict(with flat: [PlainPickleValue], depth itemDepth: Int) throws {
            guard flat.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
            var (top, depth) = try pop()
            guard case var .dict(items) = top else { throw fail("SETITEM on something that is not a dict") }
            top = .none
            items.reserveCapacity(items.count + flat.count / 2)
            var index = 0
            while index < flat.count {
                items.append((key: flat[index], value: flat[index + 1]))
                index += 2
            }
            try push(.dict(items), depth: max(depth, itemDepth + 1))
            _ = top
        }

        while true {
            guard position < bytes.count else { throw fail("truncated: no STOP opcode") }
            let opcode = bytes[position]
            position += 1
            switch opcode {
            case 0x80:  // PROTO
                let version = try readLittleEndian(1)
                guard (2...5).contains(version) else { throw fail("pickle protocol \(version) is not supported") }
            case 0x95:  // FRAME: a length prefix for buffered reading; the opcodes inside follow as usual
                _ = try readLittleEndian(8)
            case 0x94:  // MEMOIZE: only feeds memo references, which are refused
                guard !stack.isEmpty else { throw fail("MEMOIZE on an empty stack") }
            case 0x71: _ = try readLittleEndian(1)  // BINPUT
            case 0x72: _ = try readLittleEndian(4)  // LONG_BINPUT
            case 0x28: marks.append(stack.count)  // MARK
            case 0x4E: try push(.none)  // NONE
            case 0x4B: try push(.int(Int(try readLittleEndian(1))))  // BININT1
            case 0x4D: try push(.int(Int(try readLittleEndian(2))))  // BININT2
            case 0x4A: try push(.int(Int(Int32(bitPattern: UInt32(try readLittleEndian(4))))))  // BININT
            case 0x8C: try push(try readString(lengthBytes: 1))  // SHORT_BINUNICODE
            case 0x58: try push(try readString(lengthBytes: 4))  // BINUNICODE
            case 0x8D: try push(try readString(lengthBytes: 8))  // BINUNICODE8
            case 0x5D: try push(.list([]), depth: 1)  // EMPTY_LIST
            case 0x7D: try push(.dict([]), depth: 1)  // EMPTY_DICT
            case 0x29: try push(.tuple([]), depth: 1)  // EMPTY_TUPLE
            case 0x85:  // TUPLE1
                let only = try pop()
                try push(.tuple([only.value]), depth: only.depth + 1)
            case 0x86:  // TUPLE2
                let second = try pop(), first = try pop()
                try push(.tuple([first.value, second.value]), depth: max(first.depth, second.depth) + 1)
            case 0x87:  // TUPLE3
                let third = try pop(), second = try pop(), first = try pop()
                try push(.tuple([first.value, second.value, third.value]), depth: max(first.depth, second.depth, third.depth) + 1)
            case 0x74:  // TUPLE
                let items = try popToMark()
                try push(.tuple(items.values), depth: items.depth + 1)
            case 0x61:  // APPEND
                let item = try pop()
                try extendTopList(with: [item.value], depth: item.depth)
            case 0x65:  // APPENDS
                let items = try popToMark()
                try extendTopList(with: items.values, depth: items.depth)
            case 0x73:  // SETITEM
                let value = try pop(), key = try pop()
                try extendTopDict(with: [key.value, value.value], depth: max(key.depth, value.depth))
            case 0x75:  // SETITEMS
                let items = try popToMark()
                try extendTopDict(with: items.values, depth: items.depth)
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1, let result = stack.last else {
                    throw fail("STOP with \(stack.count) values and \(marks.count) open MARKs on the stack")
                }
                return result
            default:
                throw fail(String(format: "opcode 0x%02X is not one a plain dictionary of strings uses", opcode))
            }
        }
    }
}
