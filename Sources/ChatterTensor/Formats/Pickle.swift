import Foundation

/// A value read from a Python pickle by `PickleReader`.
///
/// Lists and dicts are reference types because pickle mutates them after memoising them (a memo
/// entry must see later appends). A string holds the pickle's code points exactly (its
/// `unicodeScalars`); Swift's `==` on strings merges canonically equivalent spellings and Python's
/// does not, so `PickleDict` compares keys code point by code point, and so must a reader that tells
/// such strings apart (pykakasi's dictionaries).
///
/// The last four cases are made only by an object resolver (`TorchObjectResolver`): plain data
/// (`PlainPickleData`) never holds them. They are `indirect` so that the common cases stay small.
public enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// An allow-listed class or function reference (only seen transiently, before REDUCE).
    indirect case global(module: String, name: String)
    /// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`.
    indirect case tensor(Tensor)
    /// A storage named by a persistent id (only seen transiently, before `_rebuild_tensor_v2`).
    indirect case storage(TorchStorage)
    /// A tensor whose geometry or storage is invalid. Kept as a value so that the checkpoint reader
    /// can name the tensor (its key is only known once the enclosing dict is built) in the error.
    indirect case brokenTensor(reason: String)

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
        case let .global(module, name): return "\(module).\(name)"
        case let .tensor(tensor): return "tensor(\(tensor.dtype), \(tensor.shape))"
        case let .storage(storage): return "storage(\(storage.dtype), key \(storage.key))"
        case let .brokenTensor(reason): return "broken tensor (\(reason))"
        }
    }

    public var stringValue: String? { if case let .string(value) = self { value } else { nil } }
    public var intValue: Int64? { if case let .int(value) = self { value } else { nil } }
    public var tensorValue: Tensor? { if case let .tensor(value) = self { value } else { nil } }
    public var dictValue: PickleDict? { if case let .dict(value) = self { value } else { nil } }
}

/// A Python list. Only `PickleReader` appends to it, and only while it is in no other value: a list
/// placed inside another is final, which is what keeps every value acyclic and its depth exact.
public final class PickleList {
    public internal(set) var items: [PickleValue] = []
    /// How deep containers nest in it, itself included (an empty list is 1).
    var depth = 1
    /// Set once the list is an item of a tuple, list or dict; from then on it is never mutated.
    var isContained = false
}

/// A Python dict (or `collections.OrderedDict`): its items in the order SETITEM and SETITEMS gave
/// them, which is the dict itself for every pickle Python writes (its pickler writes each key once).
/// A hand-made pickle that sets a key twice keeps both items here; `subscript` answers as Python
/// does, with the last value, comparing string keys code point by code point. Its index is built on
/// the first lookup, so a reader that only walks `items` (pykakasi's million words) never pays for it.
public final class PickleDict {
    public private(set) var items: [(key: PickleValue, value: PickleValue)] = []
    private var positions: [PickleKey: Int]?
    /// As `PickleList.depth` and `PickleList.isContained`.
    var depth = 1
    var isContained = false

    func set(_ key: PickleValue, _ value: PickleValue) {
        if positions != nil, let exactKey = PickleKey(key) { positions?[exactKey] = items.count }
        items.append((key, value))
    }

    /// The value last set under the string `key` (compared code point by code point).
    public subscript(key: String) -> PickleValue? {
        if positions == nil {
            var index: [PickleKey: Int] = [:]
            for (position, item) in items.enumerated() {
                if let exactKey = PickleKey(item.key) { index[exactKey] = position }
            }
            positions = index
        }
        return positions?[.string(ExactString(key))].map { items[$0].value }
    }
}

/// A dict key as Python hashes it: integers by value, strings by their code points.
private enum PickleKey: Hashable {
    case int(Int64)
    case string(ExactString)

    init?(_ value: PickleValue) {
        switch value {
        case let .int(number): self = .int(number)
        case let .string(text): self = .string(ExactString(text))
        default: return nil
        }
    }
}

/// A string compared and hashed by its UTF-8 bytes (equivalently, its code points), not by Swift's
/// canonical equivalence: two spellings Python keeps apart stay apart, and no normalisation is paid.
private struct ExactString: Hashable {
    let text: String
    init(_ text: String) { self.text = text }

    static func == (lhs: ExactString, rhs: ExactString) -> Bool {
        var lhsText = lhs.text, rhsText = rhs.text
        return lhsText.withUTF8 { lhsBytes in rhsText.withUTF8 { rhsBytes in lhsBytes.elementsEqual(rhsBytes) } }
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { for byte in text.utf8 { hasher.combine(byte) } }
        hasher.combine(0xFF as UInt8)  // a terminator no UTF-8 byte equals, so that concatenations differ
    }
}

/// The limits a pickle is read under. Every value the reader builds costs at least one byte of
/// input, so memory is linear in the input's size; these caps bound the constant a hostile file
/// can multiply it by, and the recursion a consumer (or ARC's teardown) can be made to do.
public struct PickleLimits: Sendable, Equatable {
    /// Which limit a pickle broke; the raw value is the limit's field name.
    public enum Limit: String, Sendable, Equatable {
        case memoEntries, nestingDepth, containerItems, stackValues
    }

    /// Distinct memo entries (MEMOIZE, BINPUT, LONG_BINPUT). pykakasi 2.3.0's kanwadict4.db (9.7 MB)
    /// memoises 1,143,500 values and torch checkpoints a few per tensor; each entry costs at least one
    /// input byte, so there are never more than the input has bytes, and the cap keeps even a 1 GB
    /// file's memo (about 33 bytes an entry) near 140 MB.
    public var memoEntries: Int
    /// How deep tuples, lists and dicts nest (an empty one is 1). pykakasi's dictionaries nest 4 deep,
    /// a torch state dict 5 (dict → OrderedDict → REDUCE arguments → size tuple); values deeper than
    /// this would be torn down and walked recursively, so a recursion bomb could exhaust the stack.
    public var nestingDepth: Int
    /// Items in one list, dict or tuple. kanwadict4.db's largest table holds a few thousand, a
    /// state dict a few thousand tensors; the cap is far above both and keeps one container's array
    /// (16 bytes an item, 32 a dict entry) under 512 MB.
    public var containerItems: Int
    /// Values on the unpickler's stack at once (a MARK's run of items lives there before its
    /// container is built): bounded like a container.
    public var stackValues: Int

    public init(memoEntries: Int, nestingDepth: Int, containerItems: Int, stackValues: Int) {
        self.memoEntries = memoEntries
        self.nestingDepth = nestingDepth
        self.containerItems = containerItems
        self.stackValues = stackValues
    }

    public static let standard = PickleLimits(memoEntries: 1 << 22, nestingDepth: 32, containerItems: 1 << 24, stackValues: 1 << 24)

    public func maximum(_ limit: Limit) -> Int {
        switch limit {
        case .memoEntries: memoEntries
        case .nestingDepth: nestingDepth
        case .containerItems: containerItems
        case .stackValues: stackValues
        }
    }
}

/// Why a pickle was not read: the byte offset of the opcode (or operand) at fault and what was wrong.
public struct PickleError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Error, Equatable, CustomStringConvertible {
        /// The input ended inside an operand, a frame or before STOP.
        case truncated(needed: Int, left: Int)
        /// An opcode this reader does not implement (protocol 0/1 text opcodes, bytes, sets, NEWOBJ…).
        case unknownOpcode(UInt8)
        /// A limit of `PickleLimits` was reached.
        case limitExceeded(PickleLimits.Limit, maximum: Int)
        /// A GLOBAL the object resolver does not allow; `allowed` says what it does allow.
        case refusedGlobal(module: String, name: String, allowed: String)
        /// A well-formed opcode applied to the wrong values (stack underflow, APPEND to a dict, a
        /// persistent id of the wrong shape, invalid UTF-8…).
        case malformed(String)

        public var description: String {
            switch self {
            case let .truncated(needed, left):
                return "truncated: \(needed) bytes wanted, \(left) left"
            case let .unknownOpcode(opcode):
                let hex = String(opcode, radix: 16, uppercase: true)
                return "opcode 0x\(hex.count == 1 ? "0" : "")\(hex) is not one this reader implements (protocol 2–5 plain data, and the objects its resolver allows)"
            case let .limitExceeded(limit, maximum):
                return "exceeds PickleLimits.\(limit.rawValue) (\(maximum))"
            case let .refusedGlobal(module, name, allowed):
                return "refusing GLOBAL '\(module).\(name)': \(allowed)"
            case let .malformed(reason):
                return reason
            }
        }
    }

    public let offset: Int
    public let kind: Kind

    public init(offset: Int, kind: Kind) {
        self.offset = offset
        self.kind = kind
    }

    public var description: String { "pickle byte \(offset): \(kind)" }
}

/// What a pickle may construct beyond plain data. The reader interprets every opcode itself and
/// asks the resolver only about the ones that name or build objects; nothing is ever executed, so
/// a resolver allow-lists globals by name and builds the values it knows.
public protocol PickleObjectResolver {
    /// GLOBAL and STACK_GLOBAL: the value that stands for `module.name`, or `.refusedGlobal`.
    func global(module: String, name: String) throws(PickleError.Kind) -> PickleValue
    /// BINPERSID: the object a persistent id names.
    func persistentLoad(_ id: PickleValue) throws(PickleError.Kind) -> PickleValue
    /// REDUCE: `callable(*arguments)`, where `callable` came from `global`.
    func reduce(_ callable: PickleValue, arguments: [PickleValue]) throws(PickleError.Kind) -> PickleValue
    /// BUILD: `object.__setstate__(state)`; the object stays on the stack.
    func build(_ object: PickleValue, state: PickleValue) throws(PickleError.Kind)
}

/// Plain data only (dicts, lists, tuples, strings, numbers, booleans, None), as `pickle.dump` writes
/// pykakasi's dictionaries: every global, persistent id, REDUCE and BUILD is refused.
public struct PlainPickleData: PickleObjectResolver {
    public init() {}

    public func global(module: String, name: String) throws(PickleError.Kind) -> PickleValue {
        throw .refusedGlobal(module: module, name: name, allowed: "this file is read as plain data (dicts, lists, tuples, strings, numbers, None) and names no classes or functions")
    }

    public func persistentLoad(_ id: PickleValue) throws(PickleError.Kind) -> PickleValue {
        throw .malformed("a persistent id in a file read as plain data")
    }

    public func reduce(_ callable: PickleValue, arguments: [PickleValue]) throws(PickleError.Kind) -> PickleValue {
        throw .malformed("REDUCE in a file read as plain data")
    }

    public func build(_ object: PickleValue, state: PickleValue) throws(PickleError.Kind) {
        throw .malformed("BUILD in a file read as plain data")
    }
}

/// Python's unpickler (protocols 2 to 5) over a byte buffer: one opcode loop for every pickle the
/// engine reads (torch checkpoints through `TorchObjectResolver`, pykakasi's dictionaries through
/// `PlainPickleData`). It implements the opcodes `pickle.dump` writes for plain containers of
/// strings and numbers, the memo, FRAME, and the object opcodes it hands to the resolver; anything
/// else, a truncation, or a limit reached is a `PickleError`, never a crash.
///
/// The bytes are only read during the call: no value returned points into them (strings are
/// copied; a resolver that keeps memory, like the checkpoint's mapped storages, owns it).
public enum PickleReader {
    public static func read(_ bytes: UnsafeRawBufferPointer, limits: PickleLimits = .standard,
                            objects: any PickleObjectResolver = PlainPickleData()) throws(PickleError) -> PickleValue {
        var machine = Machine(bytes: bytes, limits: limits, objects: objects)
        do { return try machine.run() } catch { throw PickleError(offset: machine.opcodeOffset, kind: error) }
    }

    public static func read(_ bytes: some ContiguousBytes, limits: PickleLimits = .standard,
                            objects: any PickleObjectResolver = PlainPickleData()) throws(PickleError) -> PickleValue {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(PickleError) in try read(buffer, limits: limits, objects: objects) }
        }.get()
    }

    private enum Opcode: UInt8 {
        case mark = 0x28, stop = 0x2E, binfloat = 0x47, binint = 0x4A, binint1 = 0x4B, binint2 = 0x4D, none = 0x4E
        case binpersid = 0x51, reduce = 0x52, binunicode = 0x58, emptyList = 0x5D, append = 0x61, build = 0x62
        case global = 0x63, appends = 0x65, binget = 0x68, longBinget = 0x6A, binput = 0x71, longBinput = 0x72
        case setitem = 0x73, tuple = 0x74, setitems = 0x75, emptyDict = 0x7D, emptyTuple = 0x29
        case proto = 0x80, tuple1 = 0x85, tuple2 = 0x86, tuple3 = 0x87, newTrue = 0x88, newFalse = 0x89, long1 = 0x8A
        case shortBinunicode = 0x8C, binunicode8 = 0x8D, stackGlobal = 0x93, memoize = 0x94, frame = 0x95
    }

    /// A value on the stack or in the memo, with how deep its containers nest (scalars 0). For a list
    /// or dict the object's own `depth` is the live one (it grows while items are appended).
    private struct Slot {
        var value: PickleValue
        /// 32 bits, so that a slot is 24 bytes (the memo holds a million of them for kanwadict4.db).
        private var storedDepth: Int32

        init(value: PickleValue, depth: Int) {
            self.value = value
            storedDepth = Int32(clamping: depth)
        }

        var depth: Int { Int(storedDepth) }

        var currentDepth: Int {
            switch value {
            case let .list(list): list.depth
            case let .dict(dict): dict.depth
            default: depth
            }
        }
    }

    /// The unpickler's state: the stack, its MARKs and the memo.
    private struct Machine {
        let bytes: UnsafeRawBufferPointer
        let limits: PickleLimits
        let objects: any PickleObjectResolver
        var position = 0
        /// Where the opcode being run starts: what an error names.
        var opcodeOffset = 0
        var stack: [Slot] = []
        /// Stack heights at each open MARK.
        var marks: [Int] = []
        /// Memo entries put at consecutive indices (the only kind `pickle.dump` writes) …
        var memo: [Slot] = []
        /// … and any put past the end of `memo` (Python's memo is a dict: any index is allowed).
        var sparseMemo: [Int: Slot] = [:]

        init(bytes: UnsafeRawBufferPointer, limits: PickleLimits, objects: any PickleObjectResolver) {
            self.bytes = bytes
            self.limits = limits
            self.objects = objects
            // pickle.dump memoises about one value per 8 bytes of pykakasi's dictionaries: reserving
            // that much spares kanwadict4.db's memo its regrowths (and costs 3 bytes per input byte).
            memo.reserveCapacity(min(bytes.count / 8, limits.memoEntries))
        }

        // MARK: Reading operands

        mutating func read(_ count: Int) throws(PickleError.Kind) -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - position else { throw .truncated(needed: count, left: bytes.count - position) }
            defer { position += count }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        }

        mutating func readLittleEndian(_ count: Int) throws(PickleError.Kind) -> UInt64 {
            var value: UInt64 = 0
            for (shift, byte) in try read(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
            return value
        }

        /// A length operand, checked against what is left before anything is allocated for it.
        mutating func readLength(_ count: Int) throws(PickleError.Kind) -> Int {
            let length = try readLittleEndian(count)
            let left = bytes.count - position
            guard length <= UInt64(left) else { throw .truncated(needed: length > UInt64(Int.max) ? Int.max : Int(length), left: left) }
            return Int(length)
        }

        mutating func readString(lengthBytes: Int) throws(PickleError.Kind) -> String {
            let raw = try read(try readLength(lengthBytes))
            // Decoding repairs invalid UTF-8; the bytes come back unchanged exactly when it was valid.
            // (Faster than `String(validating:)`, which is not specialised for a buffer.)
            let text: String? = raw.withMemoryRebound(to: UInt8.self) { utf8 in
                var text = String(decoding: utf8, as: UTF8.self)
                let unchanged = text.withUTF8 { decoded in
                    decoded.count == utf8.count && (utf8.isEmpty || memcmp(decoded.baseAddress!, utf8.baseAddress!, utf8.count) == 0)
                }
                return unchanged ? text : nil
            }
            guard let text else { throw .malformed("string is not valid UTF-8") }
            return text
        }

        /// A GLOBAL operand: text up to a newline.
        mutating func readLine() throws(PickleError.Kind) -> String {
            guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw .malformed("GLOBAL name without its terminating newline") }
            let line = try read(end - position)
            position += 1
            guard let text = String(validating: line, as: UTF8.self) else { throw .malformed("GLOBAL name is not valid UTF-8") }
            return text
        }

        // MARK: The stack

        mutating func push(_ value: PickleValue, depth: Int = 0) throws(PickleError.Kind) {
            guard depth <= limits.nestingDepth else { throw .limitExceeded(.nestingDepth, maximum: limits.nestingDepth) }
            guard stack.count < limits.stackValues else { throw .limitExceeded(.stackValues, maximum: limits.stackValues) }
            stack.append(Slot(value: value, depth: depth))
        }

        /// A value an object resolver made: its depth is measured (resolvers build small values).
        mutating func pushMade(_ value: PickleValue) throws(PickleError.Kind) {
            try push(value, depth: Self.measuredDepth(value))
        }

        mutating func pop() throws(PickleError.Kind) -> Slot {
            guard stack.count > (marks.last ?? 0), let slot = stack.popLast() else {
                throw .malformed(stack.isEmpty ? "stack underflow" : "a value popped across a MARK")
            }
            return slot
        }

        /// Closes the top MARK: the items above it, as a range of `stack` that the caller reads in
        /// place and then removes (no copy: a slice kept across the removal would make the stack's
        /// buffer shared, and removing from it would copy the whole stack).
        mutating func closeMark() throws(PickleError.Kind) -> Range<Int> {
            guard let mark = marks.popLast() else { throw .malformed("no MARK to pop to") }
            return mark..<stack.count
        }

        /// Marks `slot`'s list or dict as contained (never mutated again) and returns its depth.
        static func contain(_ slot: Slot) -> Int {
            switch slot.value {
            case let .list(list): list.isContained = true; return list.depth
            case let .dict(dict): dict.isContained = true; return dict.depth
            default: return slot.depth
            }
        }

        static func measuredDepth(_ value: PickleValue) -> Int {
            switch value {
            case let .tuple(items): return 1 + (items.map(measuredDepth).max() ?? 0)
            case let .list(list): return list.depth
            case let .dict(dict): return dict.depth
            default: return 0
            }
        }

        func tuple(_ slots: some Collection<Slot>) throws(PickleError.Kind) -> Slot {
            guard slots.count <= limits.containerItems else { throw .limitExceeded(.containerItems, maximum: limits.containerItems) }
            var depth = 0
            var items: [PickleValue] = []
            items.reserveCapacity(slots.count)
            for slot in slots {
                depth = max(depth, Self.contain(slot))
                items.append(slot.value)
            }
            return Slot(value: .tuple(items), depth: depth + 1)
        }

        /// The list or dict at `index` of the stack that APPEND(S)/SETITEM(S) mutate: above the
        /// innermost open MARK, and in no other value yet.
        func container(at index: Int, _ operation: String) throws(PickleError.Kind) -> PickleValue {
            guard index >= (marks.last ?? 0), index < stack.count else { throw .malformed("\(operation) with nothing to add to") }
            let container = stack[index].value
            let isContained: Bool
            switch container {
            case let .list(list): isContained = list.isContained
            case let .dict(dict): isContained = dict.isContained
            default: isContained = false
            }
            guard !isContained else {
                throw .malformed("\(operation) to a container already inside another value (a recursive structure, which is not read)")
            }
            return container
        }

        func append(_ slots: some Collection<Slot>, toListAt index: Int) throws(PickleError.Kind) {
            guard case let .list(list) = try container(at: index, "APPEND") else { throw .malformed("APPEND to something that is not a list") }
            guard list.items.count <= limits.containerItems - slots.count else { throw .limitExceeded(.containerItems, maximum: limits.containerItems) }
            var depth = list.depth
            list.items.reserveCapacity(list.items.count + slots.count)
            for slot in slots {
                if case let .list(item) = slot.value, item === list { throw .malformed("a list appended to itself (a recursive structure, which is not read)") }
                depth = max(depth, Self.contain(slot) + 1)
                list.items.append(slot.value)
            }
            guard depth <= limits.nestingDepth else { throw .limitExceeded(.nestingDepth, maximum: limits.nestingDepth) }
            list.depth = depth
        }

        func setItems(_ slots: some Collection<Slot>, inDictAt index: Int) throws(PickleError.Kind) {
            guard case let .dict(dict) = try container(at: index, "SETITEM") else { throw .malformed("SETITEM on something that is not a dict") }
            guard slots.count % 2 == 0 else { throw .malformed("SETITEMS with an odd number of values") }
            guard dict.items.count <= limits.containerItems - slots.count / 2 else { throw .limitExceeded(.containerItems, maximum: limits.containerItems) }
            var depth = dict.depth
            var key: PickleValue?
            for slot in slots {
                if case let .dict(item) = slot.value, item === dict { throw .malformed("a dict put in itself (a recursive structure, which is not read)") }
                depth = max(depth, Self.contain(slot) + 1)
                if let pendingKey = key {
                    dict.set(pendingKey, slot.value)
                    key = nil
                } else {
                    key = slot.value
                }
            }
            guard depth <= limits.nestingDepth else { throw .limitExceeded(.nestingDepth, maximum: limits.nestingDepth) }
            dict.depth = depth
        }

        // MARK: The memo

        mutating func memoPut(_ index: Int) throws(PickleError.Kind) {
            guard let top = stack.last, stack.count > (marks.last ?? 0) else { throw .malformed("memo put with an empty stack") }
            if index < memo.count {
                memo[index] = top
                return
            }
            let replacesSparseEntry = !sparseMemo.isEmpty && sparseMemo[index] != nil  // (no hashing in the usual case)
            if !replacesSparseEntry {
                guard memo.count + sparseMemo.count < limits.memoEntries else { throw .limitExceeded(.memoEntries, maximum: limits.memoEntries) }
            }
            if index == memo.count {
                if replacesSparseEntry { sparseMemo[index] = nil }
                memo.append(top)
            } else {
                sparseMemo[index] = top
            }
        }

        func memoGet(_ index: Int) throws(PickleError.Kind) -> Slot {
            let found = index < memo.count ? memo[index] : sparseMemo[index]
            guard let found else { throw .malformed("memo entry \(index) is empty") }
            return found
        }

        // MARK: The loop

        mutating func run() throws(PickleError.Kind) -> PickleValue {
            while true {
                opcodeOffset = position
                guard position < bytes.count else { throw .truncated(needed: 1, left: 0) }
                let byte = bytes[position]
                position += 1
                guard let opcode = Opcode(rawValue: byte) else { throw .unknownOpcode(byte) }
                switch opcode {
                case .proto:
                    let version = try readLittleEndian(1)
                    guard (2...5).contains(version) else { throw .malformed("pickle protocol \(version) is not supported (2 to 5 are)") }
                case .frame:
                    // A length prefix for buffered reading: the opcodes inside follow as usual, but the
                    // frame must lie inside the input.
                    _ = try readLength(8)
                case .mark:  // an open MARK counts as a value on the stack
                    guard marks.count < limits.stackValues else { throw .limitExceeded(.stackValues, maximum: limits.stackValues) }
                    marks.append(stack.count)
                case .stop:
                    guard marks.isEmpty, stack.count == 1, let result = stack.last else {
                        throw .malformed("STOP with \(stack.count) values and \(marks.count) open MARKs on the stack")
                    }
                    return result.value

                case .none: try push(.none)
                case .newTrue: try push(.bool(true))
                case .newFalse: try push(.bool(false))
                case .binint1: try push(.int(Int64(try readLittleEndian(1))))
                case .binint2: try push(.int(Int64(try readLittleEndian(2))))
                case .binint: try push(.int(Int64(Int32(truncatingIfNeeded: try readLittleEndian(4)))))
                case .long1:
                    let count = Int(try readLittleEndian(1))
                    guard count <= 8 else { throw .malformed("integer of \(count) bytes does not fit 64 bits") }
                    var value = count == 0 ? 0 : try readLittleEndian(count)
                    if count > 0 && count < 8 && value & (1 << (UInt64(count) * 8 - 1)) != 0 {
                        value |= ~0 << (UInt64(count) * 8)  // sign-extend
                    }
                    try push(.int(Int64(bitPattern: value)))
                case .binfloat:  // big-endian, unlike every other operand
                    var bits: UInt64 = 0
                    for byte in try read(8) { bits = bits << 8 | UInt64(byte) }
                    try push(.float(Double(bitPattern: bits)))
                case .shortBinunicode: try push(.string(try readString(lengthBytes: 1)))
                case .binunicode: try push(.string(try readString(lengthBytes: 4)))
                case .binunicode8: try push(.string(try readString(lengthBytes: 8)))

                case .emptyTuple: try push(.tuple([]), depth: 1)
                case .emptyList: try push(.list(PickleList()), depth: 1)
                case .emptyDict: try push(.dict(PickleDict()), depth: 1)
                case .tuple1:
                    let first = try pop()
                    let made = try tuple(CollectionOfOne(first))
                    try push(made.value, depth: made.depth)
                case .tuple2:
                    let second = try pop(), first = try pop()
                    let made = try tuple([first, second])
                    try push(made.value, depth: made.depth)
                case .tuple3:
                    let third = try pop(), second = try pop(), first = try pop()
                    let made = try tuple([first, second, third])
                    try push(made.value, depth: made.depth)
                case .tuple:
                    let items = try closeMark()
                    let made = try tuple(stack[items])
                    stack.removeSubrange(items)
                    try push(made.value, depth: made.depth)
                case .append:
                    let item = try pop()
                    try append(CollectionOfOne(item), toListAt: stack.count - 1)
                case .appends:
                    let items = try closeMark()
                    try append(stack[items], toListAt: items.lowerBound - 1)
                    stack.removeSubrange(items)
                case .setitem:
                    let value = try pop(), key = try pop()
                    try setItems([key, value], inDictAt: stack.count - 1)
                case .setitems:
                    let items = try closeMark()
                    try setItems(stack[items], inDictAt: items.lowerBound - 1)
                    stack.removeSubrange(items)

                case .memoize: try memoPut(memo.count + sparseMemo.count)
                case .binput: try memoPut(Int(try readLittleEndian(1)))
                case .longBinput: try memoPut(Int(try readLittleEndian(4)))
                case .binget:
                    let slot = try memoGet(Int(try readLittleEndian(1)))
                    try push(slot.value, depth: slot.currentDepth)
                case .longBinget:
                    let slot = try memoGet(Int(try readLittleEndian(4)))
                    try push(slot.value, depth: slot.currentDepth)

                case .global:
                    let module = try readLine(), name = try readLine()
                    try pushMade(try objects.global(module: module, name: name))
                case .stackGlobal:
                    guard case let .string(name) = try pop().value, case let .string(module) = try pop().value else {
                        throw .malformed("STACK_GLOBAL of values that are not strings")
                    }
                    try pushMade(try objects.global(module: module, name: name))
                case .binpersid:
                    try pushMade(try objects.persistentLoad(try pop().value))
                case .reduce:
                    let arguments = try pop(), callable = try pop()
                    guard case let .tuple(items) = arguments.value else { throw .malformed("REDUCE arguments are not a tuple") }
                    try pushMade(try objects.reduce(callable.value, arguments: items))
                case .build:
                    let state = try pop()
                    guard let object = stack.last, stack.count > (marks.last ?? 0) else { throw .malformed("BUILD with no object to build") }
                    try objects.build(object.value, state: state.value)
                }
            }
        }
    }
}
