/// A read-only view of the *stored* (uncompressed) entries of a ZIP archive in a mapped file, as
/// `torch.save` writes them. Entry data is located through the local header (whose extra field
/// torch pads so that data starts on a 64-byte boundary), so storages can be used in place.
/// ZIP64 is supported; compressed entries are refused by `data`, and handed out as they are stored
/// by `storedBytes` (a wheel's deflated members, inflated by the model store).
public struct ZipArchive {
    public struct Entry {
        public let name: String
        /// File offset of the entry's data.
        let dataOffset: Int
        /// Uncompressed size, and the bytes the entry occupies in the file (equal when stored).
        public let size: Int
        public let compressedSize: Int
        /// 0: stored, 8: deflated.
        public let method: UInt16
        /// The CRC-32 of the uncompressed data, as the central directory records it.
        public let crc32: UInt32
    }

    let mapping: MappedFile
    public let entries: [Entry]

    public struct FormatError: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public init(mapping: MappedFile) throws {
        self.mapping = mapping
        let bytes = UnsafeRawBufferPointer(start: mapping.baseAddress, count: mapping.byteCount)
        let reader = ByteReader(bytes: bytes)
        guard bytes.count >= 22 else { throw FormatError(reason: "file is \(bytes.count) bytes, too short for a ZIP archive (truncated?)") }

        // End of central directory: the last signature 0x06054b50 within 64 KiB + 22 of the end.
        var eocd = -1
        var position = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65_535)
        while position >= lowest {
            if try reader.u32(position) == 0x0605_4B50 { eocd = position; break }
            position -= 1
        }
        guard eocd >= 0 else { throw FormatError(reason: "no ZIP end-of-central-directory record (truncated, or not a torch.save zip file)") }
        var entryCount = Int(try reader.u16(eocd + 10))
        var directorySize = Int(try reader.u32(eocd + 12))
        var directoryOffset = Int(try reader.u32(eocd + 16))
        if eocd >= 20, try reader.u32(eocd - 20) == 0x0706_4B50 {  // ZIP64 locator
            let record = try reader.int64(eocd - 20 + 8)
            guard record <= bytes.count - 56, try reader.u32(record) == 0x0606_4B50 else { throw FormatError(reason: "bad ZIP64 end-of-central-directory record") }
            entryCount = try reader.int64(record + 32)
            directorySize = try reader.int64(record + 40)
            directoryOffset = try reader.int64(record + 48)
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset <= bytes.count - directorySize else {
            throw FormatError(reason: "central directory at \(directoryOffset) (+\(directorySize)) lies outside the \(bytes.count)-byte file (truncated?)")
        }
        guard entryCount <= directorySize / 46 + 1 else { throw FormatError(reason: "central directory claims \(entryCount) entries in \(directorySize) bytes") }

        var entries: [Entry] = []
        var cursor = directoryOffset
        for index in 0..<entryCount {
            guard try reader.u32(cursor) == 0x0201_4B50 else { throw FormatError(reason: "central directory entry \(index) has a bad signature") }
            let method = try reader.u16(cursor + 10)
            let crc32 = try reader.u32(cursor + 16)
            var compressedSize = Int(try reader.u32(cursor + 20))
            var size = Int(try reader.u32(cursor + 24))
            let nameLength = Int(try reader.u16(cursor + 28))
            let extraLength = Int(try reader.u16(cursor + 30))
            let commentLength = Int(try reader.u16(cursor + 32))
            var localOffset = Int(try reader.u32(cursor + 42))
            let name = try reader.string(cursor + 46, count: nameLength)
            // ZIP64 extended information: 8-byte values for the fields stored as 0xFFFFFFFF, in order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try reader.u16(extra), length = Int(try reader.u16(extra + 2))
                if id == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try reader.int64(field); field += 8 }
                    if compressedSize == 0xFFFF_FFFF { compressedSize = try reader.int64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = try reader.int64(field) }
                }
                extra += 4 + length
            }
            cursor = extraEnd + commentLength
            guard cursor <= directoryOffset + directorySize else { throw FormatError(reason: "central directory entry '\(name)' runs past the directory") }

            guard localOffset <= bytes.count - 30, try reader.u32(localOffset) == 0x0403_4B50 else { throw FormatError(reason: "entry '\(name)': bad local header at \(localOffset)") }
            let localName = Int(try reader.u16(localOffset + 26))
            let localExtra = Int(try reader.u16(localOffset + 28))
            let dataOffset = localOffset + 30 + localName + localExtra
            if method == 0 && compressedSize != size {
                throw FormatError(reason: "entry '\(name)': stored sizes disagree (\(compressedSize) vs \(size))")
            }
            guard dataOffset >= 0, compressedSize >= 0, dataOffset <= bytes.count - compressedSize else {
                throw FormatError(reason: "entry '\(name)': data (\(compressedSize) bytes at \(dataOffset)) runs past the end of the \(bytes.count)-byte file (truncated?)")
            }
            entries.append(Entry(name: name, dataOffset: dataOffset, size: size, compressedSize: compressedSize, method: method, crc32: crc32))
        }
        self.entries = entries
    }

    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The entry's bytes as stored (compressed or not); inside the file, checked at init.
    public func storedBytes(_ entry: Entry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping.baseAddress + entry.dataOffset, count: entry.compressedSize)
    }

    func data(_ entry: Entry) throws -> UnsafeRawBufferPointer {
        guard entry.method == 0 else {
            throw FormatError(reason: "entry '\(entry.name)' is compressed (method \(entry.method)); torch.save writes stored entries only")
        }
        return UnsafeRawBufferPointer(start: mapping.baseAddress + entry.dataOffset, count: entry.size)
    }
}

/// Bounds-checked little-endian reads from a byte buffer.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer

    func check(_ offset: Int, _ count: Int) throws {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else {
            throw ZipArchive.FormatError(reason: "read of \(count) bytes at \(offset) runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
    }
    func u16(_ offset: Int) throws -> UInt16 { try check(offset, 2); return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    func u32(_ offset: Int) throws -> UInt32 { try check(offset, 4); return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    func int64(_ offset: Int) throws -> Int {
        try check(offset, 8)
        let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        guard value <= UInt64(Int.max) else { throw ZipArchive.FormatError(reason: "64-bit field at \(offset) is out of range") }
        return Int(value)
    }
    func string(_ offset: Int, count: Int) throws -> String {
        try check(offset, count)
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]), as: UTF8.self)
    }
}
