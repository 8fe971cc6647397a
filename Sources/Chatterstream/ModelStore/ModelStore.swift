import ChatterModels
import Foundation

/// Downloads a model family's upstream checkpoint files from the Hugging Face hub (or a mirror),
/// verifies each against its published size and sha256 (a file with none known, `PublishedFile.unpinned`,
/// is accepted within its size limit and its size and sha256 recorded), converts them through a
/// hook, and caches the result:
///
///     $HF_HOME/chatterstream/<family>/<revision>/              the cached model + chatterstream-model.json
///     $HF_HOME/chatterstream/.downloads/<family>/<revision>/   verified upstream files, <file>.incomplete
///     $HF_HOME/chatterstream/.locks/<family>@<revision>.lock   one process at a time per model
///
/// A partial download survives interruption and is resumed with `Range: bytes=N-`; a file that fails
/// verification is deleted. After a successful conversion the download area is removed (the
/// default converter hard-links the upstream files, so nothing is copied).
public struct ModelStore: Sendable {
    public let settings: HubSettings
    public let converter: ModelStoreConversion
    /// The files to fetch for a family and their accepted identities; `family.files` by default
    /// (tests serve small fixtures with their own identities).
    public let publishedFiles: @Sendable (ModelFamily) -> [PublishedFile]
    /// Longest silence tolerated on a connection, connecting included.
    public var requestTimeout: TimeInterval = 15
    /// Attempts per file when the connection drops after making progress.
    public var maxAttempts = 5
    /// Where the Perth watermarker's checkpoint comes from (`ensurePerthCheckpoint`).
    public var perthSource = PerthCheckpointSource.resemblePerth101
    /// Where spacy-pkuseg's model and word list come from (`ensurePkusegModel`).
    public var pkusegSource = PkusegModelSource.spacyPkuseg102

    static let partialSuffix = ".incomplete"

    public init(settings: HubSettings, converter: ModelStoreConversion = .chatterstreamFormat,
                publishedFiles: @escaping @Sendable (ModelFamily) -> [PublishedFile] = { $0.files }) {
        self.settings = settings
        self.converter = converter
        self.publishedFiles = publishedFiles
    }

    /// Settings from `environment` (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                converter: ModelStoreConversion = .chatterstreamFormat,
                publishedFiles: @escaping @Sendable (ModelFamily) -> [PublishedFile] = { $0.files }) {
        self.init(settings: HubSettings(environment: environment), converter: converter, publishedFiles: publishedFiles)
    }

    /// Where the cached model of `family` at `revision` lives (whether or not it is there).
    public func modelDirectory(for family: ModelFamily, revision: String = "main") -> URL {
        settings.cacheRoot.appendingPathComponent(family.rawValue, isDirectory: true)
            .appendingPathComponent(Self.directoryName(revision: revision), isDirectory: true)
    }

    /// Where the upstream files of `family` at `revision` are downloaded to.
    public func downloadDirectory(for family: ModelFamily, revision: String = "main") -> URL {
        settings.cacheRoot.appendingPathComponent(".downloads/\(family.rawValue)", isDirectory: true)
            .appendingPathComponent(Self.directoryName(revision: revision), isDirectory: true)
    }

    /// The cached model directory if it is complete (manifest present, written by this store's
    /// converter, every listed file present with its size). Touches no network.
    public func cachedModel(_ family: ModelFamily, revision: String = "main") -> URL? {
        let directory = modelDirectory(for: family, revision: revision)
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(CacheRecord.fileName)),
              let manifest = try? JSONDecoder().decode(CacheRecord.self, from: data),
              manifest.format == CacheRecord.currentFormat, manifest.family == family.rawValue,
              manifest.revision == revision, manifest.converter == converter.name,
              manifest.filesPresent(in: directory)
        else { return nil }
        return directory
    }

    /// Returns the directory of the cached model, downloading, verifying and converting first when
    /// it is not cached. With `HF_HUB_OFFLINE` set it never touches the network: a model that is not
    /// cached (nor fully downloaded) is an immediate `ModelStoreError.offlineNotCached`.
    public func ensure(_ family: ModelFamily, revision: String = "main",
                      progress: @escaping @Sendable (ModelStoreEvent) -> Void = { _ in }) async throws -> URL {
        try Self.validate(name: revision)
        let files = publishedFiles(family)
        for file in files { try Self.validate(name: file.name) }
        if let directory = cachedModel(family, revision: revision) {
            progress(.cacheHit(directory: directory))
            return directory
        }
        if !settings.offline, settings.resolveURL(repository: family.repository, revision: revision, file: "x") == nil {
            throw ModelStoreError.invalidEndpoint(settings.endpoint)
        }

        let lock = try await CacheLock.acquire(
            settings.cacheRoot.appendingPathComponent(".locks/\(family.rawValue)@\(Self.directoryName(revision: revision)).lock"),
            progress: progress)
        defer { lock.release() }
        // Another process may have finished it while we waited.
        if let directory = cachedModel(family, revision: revision) {
            progress(.cacheHit(directory: directory))
            return directory
        }

        let downloads = downloadDirectory(for: family, revision: revision)
        var verified: [CacheRecord.UpstreamFile] = []
        for (index, file) in files.enumerated() {
            let final = downloads.appendingPathComponent(file.name)
            // Files only ever reach their final name after verification, so a size check suffices
            // (an unpinned file is hashed again: its record needs the sha256 it was accepted with).
            if let size = Self.fileSize(final), file.admits(size: Int(size)) {
                if let identity = file.identities.first(where: { Int64($0.size) == size }) {
                    verified.append(.init(name: file.name, size: size, sha256: identity.sha256))
                } else {
                    progress(.hashingPartial(file: file.name, bytes: size))
                    var hasher: SHA256
                    do { hasher = try Self.hashPrefix(of: final, count: size) } catch {
                        throw ModelStoreError.io(path: final.path, reason: "\(error)")
                    }
                    verified.append(.init(name: file.name, size: size, sha256: hasher.finalizeHex(), unpinned: true))
                }
                progress(.fileAlreadyDownloaded(file: file.name, size: size))
                continue
            }
            if settings.offline {
                throw ModelStoreError.offlineNotCached(family: family, revision: revision,
                                                       path: modelDirectory(for: family, revision: revision).path)
            }
            try Self.createDirectory(final.deletingLastPathComponent())
            guard let url = settings.resolveURL(repository: family.repository, revision: revision, file: file.name) else {
                throw ModelStoreError.invalidEndpoint(settings.endpoint)
            }
            do {
                verified.append(try await download(file, index: index + 1, count: files.count, from: url, repository: family.repository,
                                                   revision: revision, token: settings.token, to: final, progress: progress))
            } catch ModelStoreError.notFound where file.isOptional {
                progress(.optionalFileAbsent(file: file.name))
            }
        }
        return try install(family, revision: revision, from: downloads, upstream: verified, progress: progress)
    }

    // MARK: Download

    func download(_ file: PublishedFile, index: Int, count: Int, from url: URL, repository: String, revision: String,
                  token: String?, to final: URL, progress: @escaping @Sendable (ModelStoreEvent) -> Void) async throws
        -> CacheRecord.UpstreamFile {
        let partial = final.deletingLastPathComponent().appendingPathComponent(file.name + Self.partialSuffix)
        let maxSize = Int64(file.sizeLimit)

        // Resume what an earlier run left, after re-hashing it (the hash state is not persisted).
        var offset = Self.fileSize(partial) ?? 0
        var hasher = SHA256()
        if offset > maxSize {
            Self.remove(partial)
            offset = 0
        } else if offset > 0 {
            progress(.hashingPartial(file: file.name, bytes: offset))
            do {
                hasher = try Self.hashPrefix(of: partial, count: offset)
            } catch {
                throw ModelStoreError.io(path: partial.path, reason: "\(error)")
            }
            // A run that stopped between the last byte and the rename left a complete file: keep
            // it if it verifies (no request), else start it over.
            if file.identities.contains(where: { Int64($0.size) == offset }) {
                var digest = hasher
                if file.matches(size: Int(offset), sha256: digest.finalizeHex()) {
                    return try verify(file, partial: partial, final: final, size: offset, hasher: hasher, progress: progress)
                }
                Self.remove(partial)
                offset = 0
                hasher = SHA256()
            }
        }
        progress(.downloadStarted(file: file.name, index: index, count: count, resumingFrom: offset))

        let request = HubFileTransfer.Request(url: url, file: file, repository: repository, revision: revision,
                                              endpoint: settings.endpoint, token: token, timeout: requestTimeout)
        var attempt = 1
        var lastTotal: Int64?
        while true {
            let result: HubFileTransfer.Result
            do {
                result = try await HubFileTransfer.run(request, partial: partial, offset: offset, hasher: hasher, progress: progress)
            } catch let error as ModelStoreError {
                switch error {
                case .sizeMismatch, .unpinnedTooLarge, .hashMismatch, .badResponse: Self.remove(partial)
                default: break  // keep the partial file for the next run
                }
                throw error
            }
            offset = result.bytesOnDisk
            hasher = result.hasher
            lastTotal = result.total ?? lastTotal
            switch result.outcome {
            case .complete:
                return try verify(file, partial: partial, final: final, size: offset, hasher: hasher, progress: progress)
            case let .resumable(reason):
                guard attempt < maxAttempts else {
                    throw ModelStoreError.interrupted(file: file.name, attempts: attempt, bytesSoFar: offset, reason: reason)
                }
                attempt += 1
                progress(.retrying(file: file.name, attempt: attempt, from: offset, reason: reason))
            case let .restart(reason):
                guard attempt < maxAttempts else {
                    Self.remove(partial)
                    throw ModelStoreError.badResponse(file: file.name, url: url.absoluteString, reason: reason)
                }
                attempt += 1
                offset = 0
                hasher = SHA256()
                progress(.retrying(file: file.name, attempt: attempt, from: 0, reason: reason))
            }
        }
    }

    private func verify(_ file: PublishedFile, partial: URL, final: URL, size: Int64, hasher: SHA256,
                        progress: @Sendable (ModelStoreEvent) -> Void) throws -> CacheRecord.UpstreamFile {
        var hasher = hasher
        let digest = hasher.finalizeHex()
        guard file.admits(size: Int(size)) else {
            Self.remove(partial)
            if !file.isPinned { throw ModelStoreError.unpinnedTooLarge(file: file.name, limit: file.sizeLimit, actual: size) }
            throw ModelStoreError.sizeMismatch(file: file.name, expected: file.identities.map(\.size), actual: size)
        }
        guard !file.isPinned || file.matches(size: Int(size), sha256: digest) else {
            Self.remove(partial)
            throw ModelStoreError.hashMismatch(file: file.name, expected: file.identities.map(\.sha256), actual: digest)
        }
        do {
            if FileManager.default.fileExists(atPath: final.path) { try FileManager.default.removeItem(at: final) }
            try FileManager.default.moveItem(at: partial, to: final)
        } catch {
            throw ModelStoreError.io(path: final.path, reason: "\(error)")
        }
        guard file.isPinned else {
            progress(.fileAcceptedUnpinned(file: file.name, size: size, sha256: digest))
            return .init(name: file.name, size: size, sha256: digest, unpinned: true)
        }
        progress(.fileVerified(file: file.name, size: size, sha256: digest))
        return .init(name: file.name, size: size, sha256: digest)
    }

    // MARK: Convert and install

    private func install(_ family: ModelFamily, revision: String, from downloads: URL,
                         upstream: [CacheRecord.UpstreamFile],
                         progress: @Sendable (ModelStoreEvent) -> Void) throws -> URL {
        let destination = modelDirectory(for: family, revision: revision)
        let parent = destination.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(destination.lastPathComponent).staging-\(UUID().uuidString)",
                                                    isDirectory: true)
        try Self.createDirectory(staging)
        defer { Self.remove(staging) }

        progress(.converting(family: family, converter: converter.name))
        do {
            try converter.convert(downloads, staging, family)
        } catch {
            throw ModelStoreError.conversionFailed(family: family, reason: "\(error)")
        }

        let manifest = CacheRecord(
            format: CacheRecord.currentFormat, family: family.rawValue, repository: family.repository,
            revision: revision, endpoint: settings.endpoint, converter: converter.name, upstream: upstream,
            files: Self.regularFiles(under: staging).map { .init(name: $0.name, size: $0.size) },
            created: ISO8601DateFormatter().string(from: Date()))
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: staging.appendingPathComponent(CacheRecord.fileName), options: .atomic)
            // An incomplete directory (no valid manifest) may be in the way; it is not a cache.
            if FileManager.default.fileExists(atPath: destination.path) {
                try FileManager.default.removeItem(at: destination)
            }
            try FileManager.default.moveItem(at: staging, to: destination)
        } catch {
            throw ModelStoreError.io(path: destination.path, reason: "\(error)")
        }
        Self.remove(downloads)
        progress(.finished(directory: destination))
        return destination
    }

    // MARK: Helpers

    /// A revision like `refs/pr/1` becomes one directory, `refs--pr--1`.
    static func directoryName(revision: String) -> String {
        revision.replacingOccurrences(of: "/", with: "--")
    }

    static func validate(name: String) throws {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." })
        else { throw ModelStoreError.invalidName(name) }
    }

    /// Size of the regular file at `url`, through any symlinks (a hub snapshot, or a model folder
    /// made of links, holds links to the blobs); nil when there is none.
    static func fileSize(_ url: URL) -> Int64? {
        var info = stat()
        guard stat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }

    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.io(path: url.path, reason: "\(error)")
        }
    }

    static func hashPrefix(of url: URL, count: Int64) throws -> SHA256 {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        var remaining = count
        while remaining > 0, let chunk = try handle.read(upToCount: Int(min(remaining, 4 << 20))), !chunk.isEmpty {
            hasher.update(chunk)
            remaining -= Int64(chunk.count)
        }
        return hasher
    }

    /// Regular files under `root`, as paths relative to it, sorted.
    static func regularFiles(under root: URL) -> [(name: String, size: Int64)] {
        guard let enumerator = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var files: [(name: String, size: Int64)] = []
        while let relative = enumerator.nextObject() as? String {
            if let size = fileSize(root.appendingPathComponent(relative)) { files.append((relative, size)) }
        }
        return files.sorted { $0.name < $1.name }
    }
}
