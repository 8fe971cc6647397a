import Foundation
import Testing
@testable import ChatterTensor

/// `PickleReader` on hand-built byte strings: each opcode family, FRAME, the memo, every limit, and
/// hostile inputs (truncations, recursion bombs, cycles, globals), each refused with a typed error.
@Suite struct PickleReaderTests {
    /// Reads `bytes` as plain data, or with `objects`.
    static func read(_ bytes: [UInt8], limits: PickleLimits = .standard,
                     objects: any PickleObjectResolver = PlainPickleData()) throws(PickleError) -> PickleValue {
        try PickleReader.read(bytes, limits: limits, objects: objects)
    }

    /// The error reading `bytes` gives, or nil (and an issue) when it is read.
    static func error(_ bytes: [UInt8], limits: PickleLimits = .standard,
                      objects: any PickleObjectResolver = PlainPickleData()) -> PickleError? {
        do {
            let value = try read(bytes, limits: limits, objects: objects)
            Issue.record("read as \(value)")
            return nil
        } catch {
            print("refused: \(error)")
            return error
        }
    }

    static func string(_ text: String) -> [UInt8] { [0x8C, UInt8(text.utf8.count)] + Array(text.utf8) }

    // MARK: Opcode families

    /// `pickle.dumps({'a': [1, -2, 300, 70000, (3.5, 'é', None, True, False)], 'b': (), 'c': {}}, protocol=4)`
    /// (Python 3.12): FRAME, MEMOIZE, SHORT_BINUNICODE, the BININTs, BINFLOAT, NONE, the booleans,
    /// TUPLE, APPENDS, SETITEMS, the empty containers.
    static let protocol4Sample: [UInt8] = [
        0x80, 0x04, 0x95, 0x3B, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7D, 0x94, 0x28, 0x8C, 0x01, 0x61, 0x94, 0x5D, 0x94,
        0x28, 0x4B, 0x01, 0x4A, 0xFE, 0xFF, 0xFF, 0xFF, 0x4D, 0x2C, 0x01, 0x4A, 0x70, 0x11, 0x01, 0x00, 0x28, 0x47, 0x40, 0x0C,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8C, 0x02, 0xC3, 0xA9, 0x94, 0x4E, 0x88, 0x89, 0x74, 0x94, 0x65, 0x8C, 0x01, 0x62,
        0x94, 0x29, 0x8C, 0x01, 0x63, 0x94, 0x7D, 0x94, 0x75, 0x2E,
    ]

    @Test func readsWhatPythonWritesAtProtocol4() throws {
        let value = try Self.read(Self.protocol4Sample)
        print("protocol 4 sample: \(value)")
        #expect(value.description == "{'a': [1, -2, 300, 70000, (3.5, 'é', None, True, False)], 'b': (), 'c': {}}")
        let dict = try #require(value.dictValue)
        #expect(dict.items.map(\.key.stringValue) == ["a", "b", "c"])
        guard case let .list(list)? = dict["a"], case let .tuple(tuple)? = list.items.last else { Issue.record("'a' is not a list ending in a tuple"); return }
        #expect(list.items.prefix(4).map(\.intValue) == [1, -2, 300, 70000])
        guard case let .float(number) = tuple[0], case .none = tuple[2], case .bool(true) = tuple[3], case .bool(false) = tuple[4] else {
            Issue.record("tuple \(tuple)"); return
        }
        #expect(number == 3.5 && tuple[1].stringValue == "é")
    }

    /// `pickle.dumps({'x': [2**40, -2**63]}, protocol=2)`: BINPUT, BINUNICODE, LONG1 of 6 and 8 bytes, SETITEM.
    @Test func readsWhatPythonWritesAtProtocol2() throws {
        let bytes: [UInt8] = [
            0x80, 0x02, 0x7D, 0x71, 0x00, 0x58, 0x01, 0x00, 0x00, 0x00, 0x78, 0x71, 0x01, 0x5D, 0x71, 0x02, 0x28, 0x8A, 0x06, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x01, 0x8A, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x65, 0x73, 0x2E,
        ]
        #expect(try Self.read(bytes).description == "{'x': [1099511627776, -9223372036854775808]}")
        // LONG1 of 1 and 2 bytes sign-extends; of 0 bytes is 0; of 9 bytes does not fit.
        #expect(try Self.read([0x80, 2, 0x8A, 1, 0xFF, 0x2E]).intValue == -1)
        #expect(try Self.read([0x80, 2, 0x8A, 2, 0x00, 0x80, 0x2E]).intValue == -32768)
        #expect(try Self.read([0x80, 2, 0x8A, 0, 0x2E]).intValue == 0)
        #expect(Self.error([0x80, 2, 0x8A, 9] + [UInt8](repeating: 0, count: 9) + [0x2E])?.kind == .malformed("integer of 9 bytes does not fit 64 bits"))
    }

    @Test func readsTheTupleOpcodesAndEveryStringWidth() throws {
        let bytes: [UInt8] = [0x80, 4, 0x28, 0x4B, 1, 0x85, 0x4B, 1, 0x4B, 2, 0x86, 0x4B, 1, 0x4B, 2, 0x4B, 3, 0x87,
                              0x58, 2, 0, 0, 0] + Array("ab".utf8) + [0x8D, 1, 0, 0, 0, 0, 0, 0, 0] + Array("c".utf8) + [0x74, 0x2E]
        #expect(try Self.read(bytes).description == "((1,), (1, 2), (1, 2, 3), 'ab', 'c')")
    }

    /// Strings keep their code points; dict lookups compare keys as Python's do, so the precomposed
    /// and the decomposed é are two keys (Swift's `==` calls them equal), and a key set twice answers
    /// with the last value (both items stay in `items`, in pickle order).
    @Test func dictKeysCompareCodePointByCodePoint() throws {
        let bytes: [UInt8] = [0x80, 4, 0x7D, 0x28] + Self.string("\u{E9}") + [0x4B, 1] + Self.string("e\u{301}") + [0x4B, 2]
            + Self.string("\u{E9}") + [0x4B, 3] + [0x4A, 7, 0, 0, 0, 0x4B, 4] + [0x75, 0x2E]
        let dict = try #require(try Self.read(bytes).dictValue)
        #expect(dict.items.count == 4)
        #expect(dict["\u{E9}"]?.intValue == 3 && dict["e\u{301}"]?.intValue == 2 && dict["e"] == nil)
        #expect(dict.items.map { $0.key.stringValue.map { Array($0.unicodeScalars) } } == [["\u{E9}"], ["e", "\u{301}"], ["\u{E9}"], nil])
        #expect(dict.items[3].key.intValue == 7)
    }

    // MARK: FRAME and the memo

    @Test func frameMustLieInsideTheInput() throws {
        // A frame of 1 byte around NONE, then STOP outside it (Python allows opcodes after a frame).
        #expect(try Self.read([0x80, 4, 0x95, 1, 0, 0, 0, 0, 0, 0, 0, 0x4E, 0x2E]).description == "None")
        #expect(Self.error([0x80, 4, 0x95, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0x4E, 0x2E])?.kind == .truncated(needed: 255, left: 2))
        #expect(Self.error([0x80, 4, 0x95] + [UInt8](repeating: 0xFF, count: 8) + [0x2E])?.kind == .truncated(needed: Int.max, left: 1))
    }

    /// `pickle.dumps([l, l], protocol=4)` with `l = [1]`: BINGET of the shared list gives the same object.
    @Test func memoGetSharesTheObject() throws {
        let bytes: [UInt8] = [0x80, 0x04, 0x95, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0x5D, 0x94, 0x28, 0x5D, 0x94, 0x4B, 0x01, 0x61, 0x68, 0x01, 0x65, 0x2E]
        guard case let .list(outer) = try Self.read(bytes), case let .list(first) = outer.items[0], case let .list(second) = outer.items[1] else {
            Issue.record("not a list of lists"); return
        }
        #expect(first === second && first.items.count == 1)
        // LONG_BINPUT / LONG_BINGET at any index (Python's memo is a dict), and a get of an empty entry.
        #expect(try Self.read([0x80, 2, 0x4B, 9, 0x72, 0xFF, 0xFF, 0, 0, 0x6A, 0xFF, 0xFF, 0, 0, 0x86, 0x2E]).description == "(9, 9)")
        #expect(Self.error([0x80, 2, 0x4B, 9, 0x68, 3, 0x2E])?.kind == .malformed("memo entry 3 is empty"))
    }

    // MARK: Limits

    @Test func everyLimitIsATypedErrorNamingIt() throws {
        let tight = PickleLimits(memoEntries: 2, nestingDepth: 3, containerItems: 4, stackValues: 5)
        func breach(_ bytes: [UInt8]) -> PickleLimits.Limit? {
            guard case let .limitExceeded(limit, maximum)? = Self.error(bytes, limits: tight)?.kind else { return nil }
            #expect(maximum == tight.maximum(limit))
            return limit
        }
        // Three memo entries: the third is refused; overwriting an entry is not a new one.
        #expect(breach([0x80, 4, 0x4E, 0x94, 0x94, 0x94, 0x2E]) == .memoEntries)
        #expect(try Self.read([0x80, 4, 0x4E, 0x94, 0x94, 0x71, 0, 0x71, 1, 0x2E], limits: tight).description == "None")
        // Four nested lists, and a tuple around three.
        #expect(breach([0x80, 4, 0x5D, 0x5D, 0x5D, 0x5D, 0x61, 0x61, 0x61, 0x2E]) == .nestingDepth)
        #expect(breach([0x80, 4, 0x5D, 0x5D, 0x5D, 0x61, 0x61, 0x85, 0x2E]) == .nestingDepth)
        #expect(try Self.read([0x80, 4, 0x5D, 0x5D, 0x5D, 0x61, 0x61, 0x2E], limits: tight).description == "[[[]]]")
        // Five items in a list, a tuple or a dict.
        let fiveInts: [UInt8] = [0x28, 0x4B, 1, 0x4B, 2, 0x4B, 3, 0x4B, 4, 0x65]
        #expect(breach([0x80, 4, 0x5D] + fiveInts + [0x4B, 5, 0x61, 0x2E]) == .containerItems)
        #expect(breach([0x80, 4, 0x28, 0x4E, 0x4E, 0x4E, 0x4E, 0x4E, 0x74, 0x2E]) == .containerItems)
        #expect(breach([0x80, 4, 0x7D, 0x28, 0x4B, 1, 0x4E, 0x4B, 2, 0x4E, 0x75, 0x28, 0x4B, 3, 0x4E, 0x4B, 4, 0x4E, 0x75, 0x28, 0x4B, 5, 0x4E, 0x75, 0x2E]) == .containerItems)
        // Six values on the stack, or six open MARKs.
        #expect(breach([0x80, 4, 0x4E, 0x4E, 0x4E, 0x4E, 0x4E, 0x4E, 0x2E]) == .stackValues)
        #expect(breach([0x80, 4, 0x28, 0x28, 0x28, 0x28, 0x28, 0x28, 0x2E]) == .stackValues)
        let message = Self.error([0x80, 4, 0x4E, 0x94, 0x94, 0x94, 0x2E], limits: tight)?.description ?? ""
        #expect(message.contains("PickleLimits.memoEntries") && message.contains("pickle byte 5"), "\(message)")
    }

    /// The standard limits hold kanwadict4.db's 1,143,500 memo entries (the old torch reader stopped at 1,000,000).
    @Test func theStandardMemoHoldsKanwadictsEntries() throws {
        var bytes: [UInt8] = [0x80, 4, 0x4E]
        bytes += [UInt8](repeating: 0x94, count: 1_143_500)
        bytes.append(0x2E)
        #expect(try Self.read(bytes).description == "None")
        #expect(PickleLimits.standard.memoEntries >= 1_143_500)
    }

    // MARK: Hostile input

    @Test func recursionBombsAreRefusedAtTheDepthLimit() {
        let depth = 100_000
        let bombs: [(String, [UInt8])] = [
            ("lists", [0x80, 4] + [UInt8](repeating: 0x5D, count: depth) + [UInt8](repeating: 0x61, count: depth - 1) + [0x2E]),
            ("tuples", [0x80, 4, 0x4E] + [UInt8](repeating: 0x85, count: depth) + [0x2E]),
            ("marks", [0x80, 4] + [UInt8](repeating: 0x28, count: depth) + [UInt8](repeating: 0x74, count: depth) + [0x2E]),
            ("dicts", [0x80, 4, 0x7D] + Array(repeating: [0x4B, 1, 0x7D], count: depth - 1).flatMap { $0 }
                + [UInt8](repeating: 0x73, count: depth - 1) + [0x2E]),
        ]
        for (name, bytes) in bombs {
            guard let error = Self.error(bytes) else { continue }
            #expect(error.kind == .limitExceeded(.nestingDepth, maximum: PickleLimits.standard.nestingDepth), "\(name): \(error)")
        }
    }

    @Test func cyclesAreRefused() {
        // l = []; l.append(l): the list itself from the memo, appended to itself.
        #expect(Self.error([0x80, 4, 0x5D, 0x94, 0x68, 0, 0x61, 0x2E])?.kind
                == .malformed("a list appended to itself (a recursive structure, which is not read)"))
        // d = {}; d[1] = d.
        #expect(Self.error([0x80, 4, 0x7D, 0x94, 0x4B, 1, 0x68, 0, 0x73, 0x2E])?.kind
                == .malformed("a dict put in itself (a recursive structure, which is not read)"))
        // l = []; t = (l,); l.append(t): the list is inside the tuple, so it is final.
        #expect(Self.error([0x80, 4, 0x5D, 0x94, 0x68, 0, 0x85, 0x61, 0x2E])?.kind
                == .malformed("APPEND to a container already inside another value (a recursive structure, which is not read)"))
    }

    @Test func truncationsAndStrayBytesAreTypedErrors() {
        let sample = Self.protocol4Sample
        for cut in 0..<sample.count {
            guard let error = Self.error(Array(sample.prefix(cut))) else { continue }
            guard case .truncated = error.kind else { Issue.record("cut at \(cut): \(error)"); continue }
        }
        #expect(Self.error([0x80, 4, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E])?.kind == .truncated(needed: 0x7FFF_FFFF, left: 1))
        #expect(Self.error([0x80, 4, 0x8C, 2, 0xFF, 0xFE, 0x2E])?.kind == .malformed("string is not valid UTF-8"))
        #expect(Self.error([0x80, 6, 0x4E, 0x2E])?.kind == .malformed("pickle protocol 6 is not supported (2 to 5 are)"))
        #expect(Self.error([0x80, 4, 0x4E, 0x4E, 0x2E])?.kind == .malformed("STOP with 2 values and 0 open MARKs on the stack"))
        #expect(Self.error([0x80, 4, 0x28, 0x4E, 0x2E])?.kind == .malformed("STOP with 1 values and 1 open MARKs on the stack"))
        #expect(Self.error([0x80, 4, 0x61, 0x2E])?.kind == .malformed("stack underflow"))
        #expect(Self.error([0x80, 4, 0x4E, 0x28, 0x61, 0x2E])?.kind == .malformed("a value popped across a MARK"))
        #expect(Self.error([0x80, 4, 0x5D, 0x28, 0x4E, 0x61, 0x2E])?.kind == .malformed("APPEND with nothing to add to"))
        #expect(Self.error([0x80, 4, 0x7D, 0x4E, 0x61, 0x2E])?.kind == .malformed("APPEND to something that is not a list"))
        #expect(Self.error([0x80, 4, 0x74, 0x2E])?.kind == .malformed("no MARK to pop to"))
        // Protocol 0 text, bytes, sets, NEWOBJ: not implemented, so refused by name.
        for opcode: UInt8 in [0x49, 0x42, 0x8F, 0x81, 0x00, 0xFF] {
            #expect(Self.error([0x80, 4, opcode, 0x2E])?.kind == .unknownOpcode(opcode))
        }
        #expect(Self.error([0x80, 4, 0xFF, 0x2E])?.description.contains("pickle byte 2: opcode 0xFF") == true)
    }

    // MARK: Objects

    /// Plain data names no class: GLOBAL, STACK_GLOBAL, BINPERSID, REDUCE and BUILD are all refused.
    @Test func plainDataRefusesEveryObject() {
        let osSystem = [0x80, 2, 0x63] + Array("os\nsystem\n".utf8) + [0x2E] as [UInt8]
        guard case .refusedGlobal("os", "system", _)? = Self.error(osSystem)?.kind else { Issue.record("GLOBAL os.system was not refused"); return }
        guard case .refusedGlobal("os", "system", _)? = Self.error([0x80, 4] + Self.string("os") + Self.string("system") + [0x93, 0x2E])?.kind else {
            Issue.record("STACK_GLOBAL os.system was not refused"); return
        }
        #expect(Self.error([0x80, 4, 0x4E, 0x51, 0x2E])?.kind == .malformed("a persistent id in a file read as plain data"))
        #expect(Self.error([0x80, 4, 0x4E, 0x29, 0x52, 0x2E])?.kind == .malformed("REDUCE in a file read as plain data"))
        #expect(Self.error([0x80, 4, 0x7D, 0x4E, 0x62, 0x2E])?.kind == .malformed("BUILD in a file read as plain data"))
        #expect(Self.error([0x80, 2, 0x63] + Array("os\nsystem".utf8) + [0x2E])?.kind == .malformed("GLOBAL name without its terminating newline"))
    }

    /// The torch layer: its allow-list by GLOBAL and STACK_GLOBAL, OrderedDict by REDUCE plus BUILD,
    /// and a storage's persistent id rebuilt into a tensor by `_rebuild_tensor_v2`.
    @Test func theTorchResolverBuildsOnlyWhatItAllows() throws {
        let storage = Tensor(shape: [6], scalars: [0, 1, 2, 3, 4, 5])
        let objects = TorchObjectResolver { (record: TorchStorage) throws(PickleError.Kind) -> Tensor in
            guard record.key == "0", record.count == 6 else { throw .malformed("no storage '\(record.key)'") }
            return storage
        }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        let orderedDict = global("collections", "OrderedDict") + [0x29, 0x52]
        // OrderedDict() with one item and BUILD {'_metadata': {}}, the way torch.save writes a state dict.
        let stateDict = [0x80, 2] + orderedDict + Self.string("w") + global("torch._utils", "_rebuild_tensor_v2") + [0x28]
            + [0x28] + Self.string("storage") + global("torch", "FloatStorage") + Self.string("0") + Self.string("cpu") + [0x4B, 6, 0x74, 0x51]
            + [0x4B, 1, 0x4B, 2, 0x4B, 2, 0x86, 0x4B, 1, 0x4B, 2, 0x86, 0x89] + orderedDict + [0x74, 0x52, 0x73]
            + [0x7D] + Self.string("_metadata") + [0x7D, 0x73, 0x62, 0x2E]
        let root = try #require(try Self.read(stateDict, objects: objects).dictValue)
        let tensor = try #require(root["w"]?.tensorValue)
        #expect(tensor.shape == [2, 2] && tensor.strides == [1, 2] && tensor.contiguous().scalars() == [1, 3, 2, 4])
        // A storage the loader refuses becomes a broken tensor (named later by the checkpoint reader).
        let missing = stateDict.replacing(Self.string("0"), with: Self.string("9"))
        guard case .brokenTensor("no storage '9'")? = try Self.read(missing, objects: objects).dictValue?["w"] else {
            Issue.record("a missing storage is not a broken tensor"); return
        }
        guard case .refusedGlobal("builtins", "eval", let allowed)? = Self.error([0x80, 4] + Self.string("builtins") + Self.string("eval") + [0x93, 0x2E], objects: objects)?.kind else {
            Issue.record("STACK_GLOBAL builtins.eval was not refused"); return
        }
        #expect(allowed.contains("weights_only"))
        #expect(Self.error([0x80, 2] + global("collections", "OrderedDict") + [0x4E, 0x52, 0x2E], objects: objects)?.kind
                == .malformed("REDUCE arguments are not a tuple"))
        #expect(Self.error([0x80, 2, 0x4E, 0x4E, 0x62, 0x2E], objects: objects)?.kind == .malformed("BUILD on something other than a dict"))
    }
}
