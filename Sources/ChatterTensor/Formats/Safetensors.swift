import Foundation

/// One entry of a safetensors header.
public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data buffer.
    public let dataRange: Range<Int>
}

/// A safetensors file, memory-mapped and validated before any tensor is handed out.
///
/// Tensors returned by `tensor(_:)` point straight into the mapping (zero-copy); the mapping lives
/// as long as any of them. Validation covers everything a lying or truncated file could get wrong:
/// header length, JSON syntax, duplicate names, dtype names, shape × dtype size against the byte
/// range, ranges inside the file and not overlapping.
public final class SafetensorsFile: @unchecked Sendable {
    /// Headers larger than this are refused (the real Chatterbox headers are ~50 KB).
    public static let maximumHeaderBytes = 100 << 20

    public let path: String
    public let metadata: [String: String]
    /// Entries in header order.
    public let entries: [SafetensorsEntry]
    private let index: [String: Int]
    private let mapping: MappedFile
    /// File offset of the data buffer (8 + header length).
    private let dataOffset: Int

    public convenience init(path: String) throws {
        try self.init(mapping: MappedFile(path: path))
    }

    /// Size of the file in bytes (of the file opened, through any symlink).
    public var byteCount: Int { mapping.byteCount }

    public init(mapping: MappedFile) throws {
        self.mapping = mapping
        self.path = mapping.path
        let path = mapping.path
        func fail(_ reason: String, tensor: String? = nil) -> TensorError {
            .invalidSafetensors(path: path, tensor: tensor, reason: reason)
        }
        let fileSize = mapping.byteCount
        guard fileSize >= 8 else {
            throw fail("file is \(fileSize) bytes, shorter than the 8-byte header length (truncated?)")
        }
        let headerLength = UInt64(littleEndian: mapping.baseAddress.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else {
            throw fail("header length \(headerLength) exceeds the \(Self.maximumHeaderBytes)-byte limit")
        }
        guard headerLength <= UInt64(fileSize - 8) else {
            throw fail("header length \(headerLength) runs past the end of the \(fileSize)-byte file (truncated?)")
        }
        guard headerLength >= 2 else { throw fail("header length \(headerLength) is too small for a JSON object") }
        let headerBytes = UnsafeRawBufferPointer(start: mapping.baseAddress + 8, count: Int(headerLength))
        dataOffset = 8 + Int(headerLength)
        let bufferSize = fileSize - dataOffset

        let json: StrictJSON
        do {
            json = try StrictJSON.parse(headerBytes)
        } catch let error as StrictJSON.ParseError {
            if let name = error.duplicateKey { throw fail("the header names this tensor twice", tensor: name) }
            throw fail("header: \(error)")
        }
        guard case let .object(members) = json else { throw fail("header is not a JSON object") }

        var metadata: [String: String] = [:]
        var entries: [SafetensorsEntry] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else { throw fail("__metadata__ is not an object") }
                for (key, item) in pairs {
                    guard case let .string(text) = item else { throw fail("__metadata__ value for '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard case let .object(fields) = value else { throw fail("entry is not an object", tensor: name) }
            let field = Dictionary(fields.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
            guard case let .string(dtypeName)? = field["dtype"] else { throw fail("missing string 'dtype'", tensor: name) }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                throw fail("unknown dtype '\(dtypeName)' (known: \(DType.allCases.map(\.safetensorsName).joined(separator: ", ")))", tensor: name)
            }
            guard case let .array(dims)? = field["shape"] else { throw fail("missing array 'shape'", tensor: name) }
            var shape: [Int] = []
            var elements = 1
            // The row-major strides multiply the non-zero dimensions: an empty tensor of huge other
            // dimensions ([0, 2³¹, 2³¹, 2³¹]) has no elements but strides that would overflow.
            var span = 1
            for dim in dims {
                guard case let .integer(size) = dim, size >= 0, size <= Int64(Int32.max) else {
                    throw fail("shape \(StrictJSON.array(dims).text) has a dimension that is not an integer in 0...2³¹−1", tensor: name)
                }
                shape.append(Int(size))
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(size))
                let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: max(Int(size), 1))
                guard !overflow, !spanOverflow else { throw fail("shape \(shape) has too many elements", tensor: name) }
                elements = product
                span = spanProduct
            }
            guard case let .array(offsets)? = field["data_offsets"], offsets.count == 2,
                  case let .integer(begin) = offsets[0], case let .integer(end) = offsets[1] else {
                throw fail("missing 'data_offsets' [begin, end]", tensor: name)
            }
            guard begin >= 0, end >= begin else { throw fail("data_offsets [\(begin), \(end)] are not an increasing range", tensor: name) }
            guard end <= Int64(bufferSize) else {
                throw fail("data_offsets [\(begin), \(end)] run past the \(bufferSize)-byte data buffer (truncated file?)", tensor: name)
            }
            // A block type's blocks must not straddle rows: the GEMV reads whole rows of blocks.
            if dtype.blockElements > 1 {
                guard let last = shape.last, last % dtype.blockElements == 0 else {
                    throw fail("shape \(shape) of \(dtype) needs a last dimension that is a multiple of \(dtype.blockElements) (whole blocks per row)", tensor: name)
                }
            }
            guard let expectedBytes = dtype.byteCount(elements: elements), Int64(expectedBytes) == end - begin else {
                throw fail("shape \(shape) of \(dtype) needs \(dtype.byteCount(elements: elements).map(String.init) ?? "an impossible number of") bytes but data_offsets [\(begin), \(end)] hold \(end - begin)", tensor: name)
            }
            entries.append(SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: Int(begin)..<Int(end)))
        }
        // Ranges may not overlap (empty tensors overlap nothing).
        let sorted = entries.filter { !$0.dataRange.isEmpty }.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.dataRange.lowerBound < previous.dataRange.upperBound {
            throw fail("data \(next.dataRange) overlaps tensor '\(previous.name)' at \(previous.dataRange)", tensor: next.name)
        }
        self.metadata = metadata
        self.entries = entries
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The named tensor, mapped in place.
    public func tensor(_ name: String) throws -> Tensor {
        guard let entry = entry(name) else { throw TensorError.missingTensor(path: path, tensor: name) }
        let storage = TensorStorage(mapping: mapping, offset: dataOffset + entry.dataRange.lowerBound,
                                    byteCount: entry.dataRange.count)
        return Tensor(shape: entry.shape, dtype: entry.dtype, storage: storage)
    }

    /// The named tensor, checked against an expected shape.
    public func tensor(_ name: String, shape expected: [Int]) throws -> Tensor {
        let tensor = try tensor(name)
        guard tensor.shape == expected else { throw TensorError.shapeMismatch(tensor: name, expected: expected, actual: tensor.shape) }
        return tensor
    }

    /// Asks the kernel to read the file ahead of use.
    public func prefetch() { mapping.prefetch() }
}

/// Writes safetensors files the way the Python library does (tensors ordered by decreasing
/// element size (`DType.alignment`), then name, so every tensor is naturally aligned; header padded with spaces to a
/// multiple of 8), atomically: a temporary file in the same folder, then a rename.
public enum SafetensorsWriter {
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to path: String) throws {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard seen.insert(name).inserted else { throw TensorError.invalidArgument("\(path): tensor name '\(name)' appears twice") }
            guard name != "__metadata__" else { throw TensorError.invalidArgument("\(path): '__metadata__' is reserved") }
        }
        let ordered = tensors.sorted {
            let a = $0.tensor.dtype.alignment, b = $1.tensor.dtype.alignment
            return a != b ? a > b : $0.name < $1.name
        }
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(fields.joined(separator: ","))}")
        }
        var offset = 0
        for (name, tensor) in ordered {
            let bytes = tensor.byteCount
            parts.append("\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: .min ... .max)).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw TensorError.io(path: path, reason: "cannot create \(temporary.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            var length = UInt64(headerBytes.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: headerBytes)
            for (_, tensor) in ordered {
                try tensor.contiguous().withUnsafeRawBytes { try handle.write(contentsOf: Data($0)) }
            }
            try handle.synchronize()
            try handle.close()
            if rename(temporary.path, path) != 0 {
                throw TensorError.io(path: path, reason: "cannot rename \(temporary.lastPathComponent) into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            if let error = error as? TensorError { throw error }
            throw TensorError.io(path: path, reason: "write failed: \(error)")
        }
    }

    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
