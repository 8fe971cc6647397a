/// A value produced by the restricted unpickler. Lists and dicts are reference types because
/// pickle mutates them after memoising them (a memo entry must see later appends).
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case tensor(Tensor)
    /// An allow-listed class or function reference (only seen transiently, before REDUCE).
    case global(module: String, name: String)
    /// A storage named by a persistent id (only seen transiently, before `_rebuild_tensor_v2`).
    case storage(TorchStorage)
    /// A tensor whose geometry or storage is invalid. Kept as a value so that the checkpoint reader
    /// can name the tensor (its key is only known once the enclosing dict is built) in the error.
    case brokenTensor(reason: String)

    public var description: String {
        switch self {
        case .none: return "None"
        case let .bool(value): return value ? "True" : "False"
        case let .int(value): return String(value)
        case let .float(value): return String(value)
        case let .string(value): return "'\(value)'"
        case let .tuple(items): return "(" + items.map(\.description).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case let .list(list): return "[" + list.items.map(\.description).joined(separator: ", ") + "]"
        case let .dict(dict): return "{" + dict.items.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case let .tensor(tensor): return "tensor(\(tensor.dtype), \(tensor.shape))"
        case let .global(module, name): return "\(module).\(name)"
        case let .storage(storage): return "storage(\(storage.dtype), key \(storage.key))"
        case let .brokenTensor(reason): return "broken tensor (\(reason))"
        }
    }

    public var stringValue: String? { if case let .string(value) = self { value } else { nil } }
    public var intValue: Int64? { if case let .int(value) = self { value } else { nil } }
    public var tensorValue: Tensor? { if case let .tensor(value) = self { value } else { nil } }
    public var dictValue: PickleDict? { if case let .dict(value) = self { value } else { nil } }
}

public final class PickleList { public var items: [PickleValue] = [] }

/// An insertion-ordered dictionary (Python dicts and OrderedDicts alike).
public final class PickleDict {
    public private(set) var items: [(key: PickleValue, value: PickleValue)] = []
    private var stringIndex: [String: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue) {
        if case let .string(name) = key {
            if let existing = stringIndex[name] { items[existing].value = value; return }
            stringIndex[name] = items.count
        }
        items.append((key, value))
    }

    public subscript(key: String) -> PickleValue? { stringIndex[key].map { items[$0].value } }
}

/// A storage record of a torch zip: `data/<key>`, holding `count` elements of `dtype`.
public struct TorchStorage {
    public let key: String
    public let dtype: DType
    public let count: Int
}

/// The subset of the pickle virtual machine (protocol 2) that `torch.save` emits, with the
/// allow-list of globals that `torch.load(weights_only=True)` uses. Nothing is ever executed:
/// allowed globals are interpreted by name, anything else is refused.
struct Unpickler {
    struct Failure: Error { let reason: String }

    /// Storage classes → dtype.
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    static func isAllowed(module: String, name: String) -> Bool {
        switch (module, name) {
        case ("collections", "OrderedDict"),
             ("torch._utils", "_rebuild_tensor_v2"),
             ("torch._utils", "_rebuild_parameter"),
             ("torch._utils", "_rebuild_parameter_with_state"):
            return true
        case ("torch", _):
            return storageTypes[name] != nil
        default:
            return false
        }
    }

    let bytes: UnsafeRawBufferPointer
    /// Resolves a persistent id's storage to a tensor over its bytes (shape [count], contiguous).
    let loadStorage: (TorchStorage) throws -> Tensor

    private enum StackItem { case value(PickleValue), mark }

    /// The furthest element a (shape, strides, offset) view reaches must lie inside the storage, its
    /// offset too (even for an empty view: the byte offset is computed from it), and the view may not
    /// hold more elements than the storage: zero or overlapping strides would otherwise let a small
    /// file ask for an arbitrarily large copy in `contiguous()`.
    static func checkGeometry(shape: [Int], strides: [Int], offset: Int, storage: TorchStorage) throws {
        guard shape.count == strides.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw Failure(reason: "tensor geometry size \(shape) stride \(strides) offset \(offset) is invalid")
        }
        guard offset <= storage.count else {
            throw Failure(reason: "storage offset \(offset) lies past the end of storage 'data/\(storage.key)', which holds \(storage.count) elements")
        }
        var last = offset
        var elements = 1
        var span = 1  // as `elements` with zero dimensions counted as 1: what row-major strides multiply
        for (size, stride) in zip(shape, strides) {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: max(size, 1))
            guard !overflow, !spanOverflow else { throw Failure(reason: "tensor size \(shape) overflows") }
            elements = product
            span = spanProduct
            if size > 0 {
                let (reach, reachOverflow) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, sumOverflow) = last.addingReportingOverflow(reach)
                guard !reachOverflow, !sumOverflow else { throw Failure(reason: "tensor stride \(strides) overflows") }
                last = sum
            }
        }
        if elements > 0 && last >= storage.count {
            throw Failure(reason: "size \(shape), stride \(strides), offset \(offset) reach element \(last) of storage 'data/\(storage.key)', which holds \(storage.count)")
        }
        guard elements <= storage.count else {
            throw Failure(reason: "size \(shape) with stride \(strides) is a view of \(elements) elements over the \(storage.count) of storage 'data/\(storage.key)'; views larger than their storage (zero or overlapping strides) are not loaded")
        }
    }

    func run() throws -> PickleValue {
        var stack: [StackItem] = []
        var memo: [Int: PickleValue] = [:]
        var position = 0
        var storageCache: [String: Tensor] = [:]

        func fail(_ reason: String) -> Failure { Failure(reason: "pickle byte \(position): \(reason)") }
        func read(_ count: Int) throws -> UnsafeRawBufferPointer {
            guard count >= 0, position <= bytes.count - count else { throw fail("truncated (needs \(count) more bytes)") }
            defer { position += count }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        }
        func readU8() throws -> Int { Int(try read(1)[0]) }
        func readLE(_ count: Int) throws -> UInt64 {
            let raw = try read(count)
            var value: UInt64 = 0
            for i in stride(from: count - 1, through: 0, by: -1) { value = value << 8 | UInt64(raw[i]) }
            return value
        }
        func readLine() throws -> String {
            guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("unterminated GLOBAL name") }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
            position = end + 1
            return text
        }
        func pop() throws -> PickleValue {
            guard let last = stack.popLast() else { throw fail("stack underflow") }
            guard case let .value(value) = last else { throw fail("unexpected MARK") }
            return value
        }
        func top() throws -> PickleValue {
            guard let last = stack.last, case let .value(value) = last else { throw fail("stack underflow") }
            return value
        }
        func popToMark() throws -> [PickleValue] {
            guard let markIndex = stack.lastIndex(where: { if case .mark = $0 { true } else { false } }) else {
                throw fail("no MARK on the stack")
            }
            let items = stack[(markIndex + 1)...].map { item -> PickleValue in
                if case let .value(value) = item { return value }
                return .none
            }
            stack.removeSubrange(markIndex...)
            return items
        }
        func integer(_ value: PickleValue, _ what: String) throws -> Int {
            guard case let .int(number) = value, let result = Int(exactly: number) else { throw fail("\(what) is not an integer: \(value)") }
            return result
        }

        while true {
            let opcode = try readU8()
            switch opcode {
            case 0x80: _ = try readU8()  // PROTO
            case 0x7D: stack.append(.value(.dict(PickleDict())))  // }
            case 0x29: stack.append(.value(.tuple([])))  // )
            case 0x5D: stack.append(.value(.list(PickleList())))  // ]
            case 0x28: stack.append(.mark)  // (
            case 0x74: stack.append(.value(.tuple(try popToMark())))  // t
            case 0x85: let a = try pop(); stack.append(.value(.tuple([a])))
            case 0x86: let b = try pop(), a = try pop(); stack.append(.value(.tuple([a, b])))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.value(.tuple([a, b, c])))
            case 0x58:  // X BINUNICODE
                let length = Int(try readLE(4))
                let raw = try read(length)
                guard let text = String(validating: raw, as: UTF8.self) else { throw fail("string is not UTF-8") }
                stack.append(.value(.string(text)))
            case 0x8C:  // SHORT_BINUNICODE (protocol 4; cheap to accept)
                let raw = try read(try readU8())
                guard let text = String(validating: raw, as: UTF8.self) else { throw fail("string is not UTF-8") }
                stack.append(.value(.string(text)))
            case 0x4B: stack.append(.value(.int(Int64(try readU8()))))  // K
            case 0x4D: stack.append(.value(.int(Int64(try readLE(2)))))  // M
            case 0x4A: stack.append(.value(.int(Int64(Int32(truncatingIfNeeded: try readLE(4))))))  // J
            case 0x8A:  // LONG1
                let count = try readU8()
                guard count <= 8 else { throw fail("integer of \(count) bytes is too large") }
                var value = count == 0 ? 0 : try readLE(count)
                if count > 0 && count < 8 && value & (1 << (UInt64(count) * 8 - 1)) != 0 {
                    value |= ~0 << (UInt64(count) * 8)  // sign-extend
                }
                stack.append(.value(.int(Int64(bitPattern: value))))
            case 0x47:  // G BINFLOAT, big-endian
                let raw = try read(8)
                var bits: UInt64 = 0
                for byte in raw { bits = bits << 8 | UInt64(byte) }
                stack.append(.value(.float(Double(bitPattern: bits))))
            case 0x4E: stack.append(.value(.none))
            case 0x88: stack.append(.value(.bool(true)))
            case 0x89: stack.append(.value(.bool(false)))
            case 0x71: memo[try readU8()] = try top()  // q
            case 0x72: memo[Int(try readLE(4))] = try top()  // r
            case 0x94: memo[memo.count] = try top()  // MEMOIZE (protocol 4)
            case 0x68, 0x6A:  // h, j
                let index = opcode == 0x68 ? try readU8() : Int(try readLE(4))
                guard let value = memo[index] else { throw fail("memo \(index) is empty") }
                stack.append(.value(value))
            case 0x63:  // c GLOBAL
                let module = try readLine(), name = try readLine()
                guard Self.isAllowed(module: module, name: name) else {
                    throw Failure(reason: "refusing GLOBAL '\(module).\(name)': not on the allow-list of torch.load(weights_only=True) objects (OrderedDict, tensor rebuild functions, storage types); the file is not a plain checkpoint and was not loaded")
                }
                stack.append(.value(.global(module: module, name: name)))
            case 0x51:  // Q BINPERSID
                guard case let .tuple(fields) = try pop(), fields.count == 5,
                      case .string("storage") = fields[0],
                      case let .global("torch", typeName) = fields[1],
                      let dtype = Self.storageTypes[typeName],
                      case let .string(key) = fields[2] else {
                    throw fail("persistent id is not ('storage', torch.<Type>Storage, key, location, count)")
                }
                let count = try integer(fields[4], "storage element count")
                guard count >= 0 else { throw fail("negative storage size") }
                stack.append(.value(.storage(TorchStorage(key: key, dtype: dtype, count: count))))
            case 0x52:  // R REDUCE
                guard case let .tuple(arguments) = try pop() else { throw fail("REDUCE arguments are not a tuple") }
                guard case let .global(module, name) = try pop() else { throw fail("REDUCE of something that is not an allowed global") }
                switch (module, name) {
                case ("collections", "OrderedDict"):
                    guard arguments.isEmpty else { throw fail("OrderedDict with arguments") }
                    stack.append(.value(.dict(PickleDict())))
                case ("torch._utils", "_rebuild_tensor_v2"):
                    guard arguments.count >= 4, case let .storage(storage) = arguments[0],
                          case let .tuple(sizeValues) = arguments[2], case let .tuple(strideValues) = arguments[3] else {
                        throw fail("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)")
                    }
                    let offset = try integer(arguments[1], "storage offset")
                    let shape = try sizeValues.map { try integer($0, "size") }
                    let strides = try strideValues.map { try integer($0, "stride") }
                    do {
                        let base: Tensor
                        if let cached = storageCache[storage.key] { base = cached } else {
                            base = try loadStorage(storage)
                            storageCache[storage.key] = base
                        }
                        guard base.dtype == storage.dtype else { throw Failure(reason: "storage '\(storage.key)' is used with two dtypes") }
                        // Checked against the elements loaded for the key, not this record's count: a
                        // key reused with a larger count must not reach past the first one's bytes.
                        let loaded = TorchStorage(key: storage.key, dtype: storage.dtype, count: min(storage.count, base.shape[0]))
                        try Self.checkGeometry(shape: shape, strides: strides, offset: offset, storage: loaded)
                        guard let offsetBytes = storage.dtype.byteCount(elements: offset) else {
                            throw Failure(reason: "storage offset \(offset) is not a whole number of \(storage.dtype) blocks")
                        }
                        stack.append(.value(.tensor(Tensor(shape: shape, dtype: storage.dtype, storage: base.storage,
                                                          byteOffset: base.byteOffset + offsetBytes,
                                                          strides: strides))))
                    } catch let failure as Failure {
                        stack.append(.value(.brokenTensor(reason: failure.reason)))
                    }
                case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
                    guard let data = arguments.first, case .tensor = data else { throw fail("_rebuild_parameter without a tensor") }
                    stack.append(.value(data))
                default:
                    throw fail("REDUCE of \(module).\(name) is not supported")
                }
            case 0x62:  // b BUILD: only OrderedDict metadata (`_metadata`) is expected; ignore it.
                _ = try pop()
                guard case .dict = try top() else { throw fail("BUILD on something other than a dict") }
            case 0x73:  // s SETITEM
                let value = try pop(), key = try pop()
                guard case let .dict(dict) = try top() else { throw fail("SETITEM on a non-dict") }
                dict.set(key, value)
            case 0x75:  // u SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0, case let .dict(dict) = try top() else { throw fail("SETITEMS on a non-dict or odd item count") }
                for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
            case 0x61:  // a APPEND
                let value = try pop()
                guard case let .list(list) = try top() else { throw fail("APPEND on a non-list") }
                list.items.append(value)
            case 0x65:  // e APPENDS
                let items = try popToMark()
                guard case let .list(list) = try top() else { throw fail("APPENDS on a non-list") }
                list.items.append(contentsOf: items)
            case 0x2E:  // . STOP
                return try pop()
            default:
                throw fail("opcode 0x\(String(opcode, radix: 16)) is not part of the torch.save subset")
            }
            guard stack.count < 1_000_000, memo.count < 1_000_000 else { throw fail("pickle is unreasonably large") }
        }
    }
}
