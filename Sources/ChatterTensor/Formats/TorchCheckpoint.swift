/// A PyTorch checkpoint written by `torch.save` (zip format, torch ≥ 1.6), read without Python.
///
/// The pickle is read by `PickleReader` with the `weights_only` allow-list (`TorchObjectResolver`); tensors are
/// views straight into the memory-mapped storages, with their strides and storage offsets as saved
/// (use `contiguous()` to gather a non-contiguous one).
public final class TorchCheckpoint: @unchecked Sendable {
    public let path: String
    /// The unpickled object (usually a dict).
    public let root: PickleValue
    /// The archive's top-level folder (`archive`, or the file stem for some torch versions).
    public let archivePrefix: String

    public convenience init(path: String) throws {
        try self.init(mapping: MappedFile(path: path))
    }

    public init(mapping: MappedFile) throws {
        let path = mapping.path
        self.path = path
        func fail(_ reason: String) -> TensorError { .invalidCheckpoint(path: path, tensor: nil, reason: reason) }
        if mapping.byteCount >= 2,
           mapping.baseAddress.load(as: UInt8.self) == 0x80, mapping.baseAddress.load(fromByteOffset: 1, as: UInt8.self) == 0x02 {
            throw fail("this is a legacy (pre-1.6, non-zip) torch file; re-save it with a current torch")
        }
        let archive: ZipArchive
        do { archive = try ZipArchive(mapping: mapping) } catch let error as ZipArchive.FormatError { throw fail(error.reason) }
        guard let pickleEntry = archive.entries.first(where: { $0.name == "data.pkl" || $0.name.hasSuffix("/data.pkl") }) else {
            throw fail("no data.pkl record in the archive (not a torch.save file)")
        }
        let prefix = pickleEntry.name.hasSuffix("/data.pkl") ? String(pickleEntry.name.dropLast("/data.pkl".count)) : ""
        archivePrefix = prefix
        let folder = prefix.isEmpty ? "" : prefix + "/"
        if let order = archive.entry(named: folder + "byteorder") {
            let text = String(decoding: try Self.read(archive, order, path), as: UTF8.self)
            guard text.hasPrefix("little") else { throw fail("byte order '\(text)' is not supported (little-endian only)") }
        }
        let entriesByName = Dictionary(archive.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let objects = TorchObjectResolver { (storage: TorchStorage) throws(PickleError.Kind) -> Tensor in
            guard let entry = entriesByName[folder + "data/" + storage.key] else {
                throw .malformed("storage record 'data/\(storage.key)' is missing from the archive")
            }
            guard let needed = storage.dtype.byteCount(elements: storage.count), entry.size >= needed else {
                throw .malformed("its storage 'data/\(storage.key)' holds \(entry.size) bytes, too short for \(storage.count) \(storage.dtype) elements")
            }
            guard entry.method == 0 else { throw .malformed("storage 'data/\(storage.key)' is compressed") }
            let tensorStorage = TensorStorage(mapping: mapping, offset: entry.dataOffset, byteCount: needed)
            return Tensor(shape: [storage.count], dtype: storage.dtype, storage: tensorStorage)
        }
        let pickle = try Self.read(archive, pickleEntry, path)
        do { root = try PickleReader.read(pickle, objects: objects) } catch { throw fail(error.description) }
        if let (name, reason) = Self.firstBrokenTensor(in: root) {
            throw TensorError.invalidCheckpoint(path: path, tensor: name, reason: reason)
        }
    }

    /// Walks dicts, lists and tuples for a tensor that could not be rebuilt, naming it by key path.
    private static func firstBrokenTensor(in value: PickleValue, prefix: String = "") -> (String, String)? {
        switch value {
        case let .brokenTensor(reason): return (prefix.isEmpty ? "<root>" : prefix, reason)
        case let .dict(dict):
            for (key, item) in dict.items {
                let name = key.stringValue ?? key.intValue.map(String.init) ?? key.description
                if let found = firstBrokenTensor(in: item, prefix: prefix.isEmpty ? name : prefix + "." + name) { return found }
            }
        case let .list(list):
            for (index, item) in list.items.enumerated() {
                if let found = firstBrokenTensor(in: item, prefix: prefix + "[\(index)]") { return found }
            }
        case let .tuple(items):
            for (index, item) in items.enumerated() {
                if let found = firstBrokenTensor(in: item, prefix: prefix + "[\(index)]") { return found }
            }
        default: break
        }
        return nil
    }

    private static func read(_ archive: ZipArchive, _ entry: ZipArchive.Entry, _ path: String) throws -> UnsafeRawBufferPointer {
        do { return try archive.data(entry) } catch let error as ZipArchive.FormatError {
            throw TensorError.invalidCheckpoint(path: path, tensor: nil, reason: error.reason)
        }
    }

    /// Every tensor reachable through nested string-keyed dicts, named by the dotted key path
    /// (`t3.speaker_emb`, `model.encoder.layers.0.conv.weight`), in file order. `None` values and
    /// non-tensor leaves are skipped; see `root` for those.
    public func tensors() -> [(name: String, tensor: Tensor)] {
        var result: [(String, Tensor)] = []
        func visit(_ value: PickleValue, _ prefix: String) {
            switch value {
            case let .tensor(tensor): result.append((prefix, tensor))
            case let .dict(dict):
                for (key, item) in dict.items {
                    let name: String
                    switch key {
                    case let .string(text): name = text
                    case let .int(number): name = String(number)
                    default: continue
                    }
                    visit(item, prefix.isEmpty ? name : prefix + "." + name)
                }
            default: break
            }
        }
        visit(root, "")
        return result
    }

    /// The tensor at a dotted key path.
    public func tensor(_ name: String) throws -> Tensor {
        guard let found = tensors().first(where: { $0.name == name }) else { throw TensorError.missingTensor(path: path, tensor: name) }
        return found.tensor
    }
}
