#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes behind one or more tensors: an aligned heap buffer, or a read-only memory-mapped
/// region of a file (so that weights are used in place, with no copy at load).
public final class TensorStorage: @unchecked Sendable {
    public enum Kind: Sendable { case heap, mapped }

    /// Alignment of heap buffers: one cache line, which also satisfies every SIMD width we use.
    public static let alignment = 64

    public let kind: Kind
    public let byteCount: Int
    /// Start of the bytes. Stable for the storage's lifetime.
    public let baseAddress: UnsafeMutableRawPointer
    /// The mapping that owns `baseAddress` for `.mapped` storage (kept alive by this reference).
    public let mapping: MappedFile?

    public var isWritable: Bool { kind == .heap }

    /// A zero-filled heap buffer of `byteCount` bytes.
    public init(byteCount: Int) {
        self.kind = .heap
        self.byteCount = byteCount
        self.mapping = nil
        let size = max(byteCount, 1)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.baseAddress = pointer
    }

    /// A view of `byteCount` bytes at `offset` inside a mapped file. No bytes are copied.
    public init(mapping: MappedFile, offset: Int, byteCount: Int) {
        precondition(offset >= 0 && byteCount >= 0 && offset + byteCount <= mapping.byteCount,
                     "storage range outside the mapping")
        self.kind = .mapped
        self.byteCount = byteCount
        self.mapping = mapping
        self.baseAddress = UnsafeMutableRawPointer(mutating: mapping.baseAddress + offset)
    }

    deinit {
        if kind == .heap { baseAddress.deallocate() }
    }
}

/// A whole file mapped read-only into memory. Pages are loaded by the kernel on first touch and
/// shared with the page cache, so opening a multi-gigabyte checkpoint costs milliseconds.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let byteCount: Int
    public let baseAddress: UnsafeRawPointer
    private let mappedLength: Int

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TensorError.io(path: path, reason: Self.errnoText("cannot open")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw TensorError.io(path: path, reason: Self.errnoText("cannot stat")) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TensorError.io(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        self.byteCount = size
        // mmap of length 0 fails; map one page so that an empty file still has a valid base address
        // (and is then rejected by the format reader with a useful message).
        self.mappedLength = max(size, 1)
        guard let pointer = mmap(nil, mappedLength, PROT_READ, MAP_PRIVATE, fd, 0),
              pointer != MAP_FAILED else {
            throw TensorError.io(path: path, reason: Self.errnoText("cannot map"))
        }
        self.baseAddress = UnsafeRawPointer(pointer)
    }

    /// Asks the kernel to read the whole file ahead (useful before a benchmark or a first inference).
    public func prefetch() {
        _ = madvise(UnsafeMutableRawPointer(mutating: baseAddress), mappedLength, Int32(MADV_WILLNEED))
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: baseAddress), mappedLength)
    }

    private static func errnoText(_ what: String) -> String {
        "\(what): \(String(cString: strerror(errno)))"
    }
}
