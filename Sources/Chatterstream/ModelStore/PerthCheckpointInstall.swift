import ChatterTensor
import CZlib
import ChatterModels
import Foundation

/// Where the Perth watermarker's checkpoint comes from: a member of a wheel on PyPI, both pinned by
/// size and sha256 (the wheel is verified as it downloads, the member after it is inflated).
public struct PerthCheckpointSource: Sendable, Equatable {
    public var wheelURL: URL
    public var wheel: PublishedFile
    /// The checkpoint's path inside the wheel.
    public var member: String
    public var checkpoint: FileIdentity

    public init(wheelURL: URL, wheel: PublishedFile, member: String, checkpoint: FileIdentity) {
        self.wheelURL = wheelURL
        self.wheel = wheel
        self.member = member
        self.checkpoint = checkpoint
    }

    /// resemble-perth 1.0.1 (MIT, Resemble AI), as tools/perth/fetch-checkpoint.sh pins it.
    public static let resemblePerth101 = PerthCheckpointSource(
        wheelURL: URL(string: "https://files.pythonhosted.org/packages/77/cc/73226dd776f8e9c2975f64f4efc22988fb37e5b185ba5cccd6f2e7196954/resemble_perth-1.0.1-py3-none-any.whl")!,
        wheel: PublishedFile(name: "resemble_perth-1.0.1-py3-none-any.whl", identities: [
            FileIdentity(size: 34_404_578, sha256: "65e9c37531b1a128a4a56226b75dece4521683cf3611b0b2a5ffe234f00c9342"),
        ]),
        member: "perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar",
        checkpoint: FileIdentity(size: 37_429_684, sha256: "a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670"))
}

extension ModelStore {
    /// Where `ensurePerthCheckpoint` installs the checkpoint (one of `PerthCheckpoint`'s places).
    public var perthCheckpointPath: URL {
        settings.cacheRoot.appendingPathComponent("perth").appendingPathComponent(PerthCheckpoint.fileName)
    }

    /// The Perth checkpoint, installed from `perthSource` when it is not there yet: the wheel is
    /// downloaded (resumable, verified), the member inflated and verified, then renamed into place.
    /// With `HF_HUB_OFFLINE` set a missing checkpoint is `ModelStoreError.perthUnavailable`.
    public func ensurePerthCheckpoint(progress: @escaping @Sendable (ModelStoreEvent) -> Void = { _ in }) async throws -> URL {
        let destination = perthCheckpointPath
        if Self.fileSize(destination) == Int64(perthSource.checkpoint.size) { return destination }
        if settings.offline {
            throw ModelStoreError.perthUnavailable(reason: "HF_HUB_OFFLINE is set and it is not installed at \(destination.path)")
        }
        let lock = try await CacheLock.acquire(settings.cacheRoot.appendingPathComponent(".locks/perth.lock"), progress: progress)
        defer { lock.release() }
        if Self.fileSize(destination) == Int64(perthSource.checkpoint.size) { return destination }

        let downloads = settings.cacheRoot.appendingPathComponent(".downloads/perth", isDirectory: true)
        try Self.createDirectory(downloads)
        let wheel = downloads.appendingPathComponent(perthSource.wheel.name)
        if !perthSource.wheel.identities.contains(where: { Int64($0.size) == Self.fileSize(wheel) }) {
            // No hub token: the wheel comes from PyPI, not the hub.
            _ = try await download(perthSource.wheel, index: 1, count: 1, from: perthSource.wheelURL, repository: "PyPI",
                                   revision: perthSource.wheel.name, token: nil, to: wheel, progress: progress)
        }
        let data = try Self.extract(member: perthSource.member, from: wheel, expected: perthSource.checkpoint)
        try Self.createDirectory(destination.deletingLastPathComponent())
        let partial = destination.deletingLastPathComponent().appendingPathComponent(".\(PerthCheckpoint.fileName).\(UUID().uuidString).tmp")
        do {
            try data.write(to: partial)
            if FileManager.default.fileExists(atPath: destination.path) { try FileManager.default.removeItem(at: destination) }
            try FileManager.default.moveItem(at: partial, to: destination)
        } catch {
            Self.remove(partial)
            throw ModelStoreError.io(path: destination.path, reason: "\(error)")
        }
        Self.remove(downloads)
        progress(.fileVerified(file: PerthCheckpoint.fileName, size: Int64(data.count), sha256: perthSource.checkpoint.sha256))
        return destination
    }

    /// `member` of the zip at `wheel` (stored or deflated), checked against `expected`.
    static func extract(member: String, from wheel: URL, expected: FileIdentity) throws -> Data {
        func fail(_ reason: String) -> ModelStoreError { .perthUnavailable(reason: "\(wheel.lastPathComponent): \(reason)") }
        let data = try memberData(member, of: wheel, sizeLimit: expected.size, fail: fail)
        var hasher = SHA256()
        hasher.update(data)
        let digest = hasher.finalizeHex()
        guard data.count == expected.size, digest == expected.sha256 else {
            throw fail("\(member) has sha256 \(digest), not the pinned \(expected.sha256)")
        }
        return data
    }

    /// `member` of the zip at `archiveURL`, stored or deflated, refused (through `fail`, which gets the
    /// reason) when it is absent or larger than `sizeLimit` bytes once inflated.
    static func memberData(_ member: String, of archiveURL: URL, sizeLimit: Int, fail: (String) -> ModelStoreError) throws -> Data {
        let archive: ZipArchive
        do { archive = try ZipArchive(mapping: MappedFile(path: archiveURL.path)) } catch { throw fail("not a readable zip archive (\(error))") }
        guard let entry = archive.entry(named: member) else { throw fail("it holds no \(member)") }
        guard entry.size <= sizeLimit else { throw fail("\(member) is \(entry.size) bytes, more than the \(sizeLimit) expected") }
        let stored = archive.storedBytes(entry)
        switch entry.method {
        case 0: return Data(stored)
        case 8: return try inflateRaw(stored, size: entry.size).get(orThrow: { fail("\(member) does not inflate (\($0))") })
        default: throw fail("\(member) is compressed with method \(entry.method), not deflate")
        }
    }

    /// Raw deflate (zip method 8) of `input` into exactly `size` bytes.
    static func inflateRaw(_ input: UnsafeRawBufferPointer, size: Int) -> Result<Data, InflateFailure> {
        var output = Data(count: size)
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return .failure(InflateFailure(reason: "inflateInit2 failed"))
        }
        defer { inflateEnd(&stream) }
        let status = output.withUnsafeMutableBytes { out -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
            stream.avail_out = uInt(out.count)
            return inflate(&stream, Z_FINISH)
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == size else {
            return .failure(InflateFailure(reason: "zlib status \(status) after \(stream.total_out) of \(size) bytes"))
        }
        return .success(output)
    }

    struct InflateFailure: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }
}

private extension Result {
    func get(orThrow wrap: (Failure) -> some Error) throws -> Success {
        switch self {
        case let .success(value): value
        case let .failure(error): throw wrap(error)
        }
    }
}
