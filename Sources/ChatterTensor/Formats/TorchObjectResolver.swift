/// A storage record of a torch zip: `data/<key>`, holding `count` elements of `dtype`.
public struct TorchStorage {
    public let key: String
    public let dtype: DType
    public let count: Int
}

/// The objects `torch.save` pickles, read as `torch.load(weights_only=True)` allows them: the
/// `PickleReader` runs the opcodes, and this layer turns the allow-listed globals (OrderedDict, the
/// tensor rebuild functions, the storage types) and the storages' persistent ids into values.
/// Nothing is ever executed: allowed globals are interpreted by name, anything else is refused.
public final class TorchObjectResolver: PickleObjectResolver {
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

    /// Resolves a persistent id's storage to a tensor over its bytes (shape [count], contiguous); a
    /// `.malformed` reason becomes the tensor's `.brokenTensor` reason.
    private let loadStorage: (TorchStorage) throws(PickleError.Kind) -> Tensor
    /// Each storage key is loaded once: tensors sharing a storage are views of one mapping.
    private var storageCache: [String: Tensor] = [:]

    public init(loadStorage: @escaping (TorchStorage) throws(PickleError.Kind) -> Tensor) {
        self.loadStorage = loadStorage
    }

    public func global(module: String, name: String) throws(PickleError.Kind) -> PickleValue {
        guard Self.isAllowed(module: module, name: name) else {
            throw .refusedGlobal(module: module, name: name, allowed: "not on the allow-list of torch.load(weights_only=True) objects (OrderedDict, tensor rebuild functions, storage types); the file is not a plain checkpoint and was not loaded")
        }
        return .global(module: module, name: name)
    }

    public func persistentLoad(_ id: PickleValue) throws(PickleError.Kind) -> PickleValue {
        guard case let .tuple(fields) = id, fields.count == 5,
              case .string("storage") = fields[0],
              case let .global("torch", typeName) = fields[1],
              let dtype = Self.storageTypes[typeName],
              case let .string(key) = fields[2] else {
            throw .malformed("persistent id is not ('storage', torch.<Type>Storage, key, location, count)")
        }
        let count = try Self.integer(fields[4], "storage element count")
        guard count >= 0 else { throw .malformed("negative storage size") }
        return .storage(TorchStorage(key: key, dtype: dtype, count: count))
    }

    public func reduce(_ callable: PickleValue, arguments: [PickleValue]) throws(PickleError.Kind) -> PickleValue {
        guard case let .global(module, name) = callable else { throw .malformed("REDUCE of something that is not an allowed global") }
        switch (module, name) {
        case ("collections", "OrderedDict"):
            guard arguments.isEmpty else { throw .malformed("OrderedDict with arguments") }
            return .dict(PickleDict())
        case ("torch._utils", "_rebuild_tensor_v2"):
            guard arguments.count >= 4, case let .storage(storage) = arguments[0],
                  case let .tuple(sizeValues) = arguments[2], case let .tuple(strideValues) = arguments[3] else {
                throw .malformed("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)")
            }
            let offset = try Self.integer(arguments[1], "storage offset")
            var shape: [Int] = [], strides: [Int] = []
            for value in sizeValues { shape.append(try Self.integer(value, "size")) }
            for value in strideValues { strides.append(try Self.integer(value, "stride")) }
            do {
                return .tensor(try tensor(storage: storage, offset: offset, shape: shape, strides: strides))
            } catch let .malformed(reason) {
                return .brokenTensor(reason: reason)
            }
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let data = arguments.first, case .tensor = data else { throw .malformed("_rebuild_parameter without a tensor") }
            return data
        default:
            throw .malformed("REDUCE of \(module).\(name) is not supported")
        }
    }

    /// Only an OrderedDict's metadata (`_metadata`) is expected; it is ignored.
    public func build(_ object: PickleValue, state: PickleValue) throws(PickleError.Kind) {
        guard case .dict = object else { throw .malformed("BUILD on something other than a dict") }
    }

    private func tensor(storage: TorchStorage, offset: Int, shape: [Int], strides: [Int]) throws(PickleError.Kind) -> Tensor {
        let base: Tensor
        if let cached = storageCache[storage.key] { base = cached } else {
            base = try loadStorage(storage)
            storageCache[storage.key] = base
        }
        guard base.dtype == storage.dtype else { throw .malformed("storage '\(storage.key)' is used with two dtypes") }
        // Checked against the elements loaded for the key, not this record's count: a key reused
        // with a larger count must not reach past the first one's bytes.
        let loaded = TorchStorage(key: storage.key, dtype: storage.dtype, count: min(storage.count, base.shape[0]))
        try Self.checkGeometry(shape: shape, strides: strides, offset: offset, storage: loaded)
        guard let offsetBytes = storage.dtype.byteCount(elements: offset) else {
            throw .malformed("storage offset \(offset) is not a whole number of \(storage.dtype) blocks")
        }
        return Tensor(shape: shape, dtype: storage.dtype, storage: base.storage, byteOffset: base.byteOffset + offsetBytes, strides: strides)
    }

    private static func integer(_ value: PickleValue, _ what: String) throws(PickleError.Kind) -> Int {
        guard case let .int(number) = value, let result = Int(exactly: number) else { throw .malformed("\(what) is not an integer: \(value)") }
        return result
    }

    /// The furthest element a (shape, strides, offset) view reaches must lie inside the storage, its
    /// offset too (even for an empty view: the byte offset is computed from it), and the view may not
    /// hold more elements than the storage: zero or overlapping strides would otherwise let a small
    /// file ask for an arbitrarily large copy in `contiguous()`.
    static func checkGeometry(shape: [Int], strides: [Int], offset: Int, storage: TorchStorage) throws(PickleError.Kind) {
        guard shape.count == strides.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw .malformed("tensor geometry size \(shape) stride \(strides) offset \(offset) is invalid")
        }
        guard offset <= storage.count else {
            throw .malformed("storage offset \(offset) lies past the end of storage 'data/\(storage.key)', which holds \(storage.count) elements")
        }
        var last = offset
        var elements = 1
        var span = 1  // as `elements` with zero dimensions counted as 1: what row-major strides multiply
        for (size, stride) in zip(shape, strides) {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: max(size, 1))
            guard !overflow, !spanOverflow else { throw .malformed("tensor size \(shape) overflows") }
            elements = product
            span = spanProduct
            if size > 0 {
                let (reach, reachOverflow) = (size - 1).multipliedReportingOverflow(by: stride)
                let (sum, sumOverflow) = last.addingReportingOverflow(reach)
                guard !reachOverflow, !sumOverflow else { throw .malformed("tensor stride \(strides) overflows") }
                last = sum
            }
        }
        if elements > 0 && last >= storage.count {
            throw .malformed("size \(shape), stride \(strides), offset \(offset) reach element \(last) of storage 'data/\(storage.key)', which holds \(storage.count)")
        }
        guard elements <= storage.count else {
            throw .malformed("size \(shape) with stride \(strides) is a view of \(elements) elements over the \(storage.count) of storage 'data/\(storage.key)'; views larger than their storage (zero or overlapping strides) are not loaded")
        }
    }
}
