import ChatterModels
import Foundation

/// Where spacy-pkuseg's segmentation data comes from (what upstream's Chinese preprocessing,
/// `pkuseg()`, reads): the model `spacy_ontonotes.zip`, a GitHub release asset that pkuseg downloads on
/// first use, pinned by the sha256 spacy-pkuseg itself pins (its size is not known to this build, so
/// it is accepted up to `modelSizeLimit` and then checked by hash); and the word list `default.pkl`
/// with its licence, members of the spacy-pkuseg wheel on PyPI, pinned by size and sha256.
public struct PkusegModelSource: Sendable, Equatable {
    public var modelURL: URL
    public var modelArchiveName: String
    public var modelSHA256: String
    public var modelSizeLimit: Int
    public var wheelURL: URL
    public var wheel: PublishedFile
    /// The word list's and the licence's paths inside the wheel, and their identities.
    public var wordListMember: String
    public var wordList: FileIdentity
    public var licenseMember: String
    public var license: FileIdentity

    public init(modelURL: URL, modelArchiveName: String, modelSHA256: String, modelSizeLimit: Int, wheelURL: URL, wheel: PublishedFile,
                wordListMember: String, wordList: FileIdentity, licenseMember: String, license: FileIdentity) {
        self.modelURL = modelURL
        self.modelArchiveName = modelArchiveName
        self.modelSHA256 = modelSHA256
        self.modelSizeLimit = modelSizeLimit
        self.wheelURL = wheelURL
        self.wheel = wheel
        self.wordListMember = wordListMember
        self.wordList = wordList
        self.licenseMember = licenseMember
        self.license = license
    }

    /// spacy-pkuseg 1.0.2 (MIT, Explosion and the pkuseg authors), as tools/pkuseg/fetch-model.sh pins it:
    /// `config.model_urls["spacy_ontonotes"]` and `config.model_hash["spacy_ontonotes"]`, and the wheel's
    /// `dicts/default.pkl` (the same in every platform's wheel).
    public static let spacyPkuseg102 = PkusegModelSource(
        modelURL: URL(string: "https://github.com/explosion/spacy-pkuseg/releases/download/v0.0.26/spacy_ontonotes.zip")!,
        modelArchiveName: "spacy_ontonotes.zip",
        modelSHA256: "b216e7f92de7ae285aeab8feba2faa8ea8216e5995ff6fb3d391cc8356db1bfe",
        modelSizeLimit: 512 << 20,
        wheelURL: URL(string: "https://files.pythonhosted.org/packages/71/91/e6d754fdec6ebe96187679bb00cac61fc4eba6b08def0483ca92839e4122/spacy_pkuseg-1.0.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl")!,
        wheel: PublishedFile(name: "spacy_pkuseg-1.0.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl", identities: [
            FileIdentity(size: 4_411_242, sha256: "eada7615a9055f6c9570d8acca652158d2e86c298d15aaa2e40126bae8017de3"),
        ]),
        wordListMember: "spacy_pkuseg/dicts/default.pkl",
        wordList: FileIdentity(size: 4_525_959, sha256: "3cf450d95719d51883fa49291302b9032372064d86805b130bb2ea0223196c67"),
        licenseMember: "spacy_pkuseg-1.0.2.dist-info/licenses/LICENSE",
        license: FileIdentity(size: 1_099, sha256: "9794864c3950e66d36c9ab8e8ff7741538909d9813f8991bae69d8c3495f8de5"))
}

extension ModelStore {
    /// Where `ensurePkusegModel` installs the model (one of `PkusegModelLocation`'s places).
    public var pkusegModelDirectory: URL {
        settings.cacheRoot.appendingPathComponent(PkusegModelLocation.cacheSubdirectory, isDirectory: true)
    }

    /// Whether `family`'s text front end segments Chinese with spacy-pkuseg (the multilingual tokenizer)
    /// and none of `PkusegModelLocation`'s places (this store's cache root among them) holds its model.
    public func needsPkusegModel(for family: ModelFamily) -> Bool {
        family.variant.textTokenizer == .multilingualGraphemes && PkusegModelLocation.locate(cacheRoot: settings.cacheRoot) == nil
    }

    /// spacy-pkuseg's model and word list, installed from `pkusegSource` when they are not there yet:
    /// the model archive is downloaded (resumable) and checked against its pinned sha256, the wheel
    /// likewise against its size and sha256, and `features.msgpack`, `weights.npz`, `default.pkl` and
    /// `LICENSE` are unpacked (the last two verified) and renamed into place together.
    ///
    /// Upstream crashes when it cannot fetch this model; callers here warn and go on, and the Chinese
    /// text is then coded unsegmented (`ChineseCangjieConverter`). With `HF_HUB_OFFLINE` set a missing
    /// model is `ModelStoreError.pkusegUnavailable`.
    public func ensurePkusegModel(progress: @escaping @Sendable (ModelStoreEvent) -> Void = { _ in }) async throws -> URL {
        let destination = pkusegModelDirectory
        if PkusegModelLocation.holdsFiles(destination) { return destination }
        if settings.offline {
            throw ModelStoreError.pkusegUnavailable(reason: "HF_HUB_OFFLINE is set and it is not installed at \(destination.path)")
        }
        let lock = try await CacheLock.acquire(settings.cacheRoot.appendingPathComponent(".locks/pkuseg.lock"), progress: progress)
        defer { lock.release() }
        if PkusegModelLocation.holdsFiles(destination) { return destination }

        let source = pkusegSource
        let downloads = settings.cacheRoot.appendingPathComponent(".downloads/pkuseg", isDirectory: true)
        try Self.createDirectory(downloads)

        // The model first: it is the part most likely to be out of reach (GitHub), and a verified
        // wheel is kept in the download area for the next try.
        let archive = downloads.appendingPathComponent(source.modelArchiveName)
        if Self.fileSize(archive) == nil {
            let unpinned = PublishedFile.unpinned(source.modelArchiveName, sizeLimit: source.modelSizeLimit)
            // Accepted unpinned by size, then checked here by the pinned hash: say "verified" only then.
            let record = try await Self.failingAsPkusegUnavailable(source.modelURL) {
                try await download(unpinned, index: 1, count: 2, from: source.modelURL, repository: "GitHub (explosion/spacy-pkuseg)",
                                   revision: "v0.0.26", token: nil, to: archive) { event in
                    if case .fileAcceptedUnpinned = event { return }
                    progress(event)
                }
            }
            guard record.sha256 == source.modelSHA256 else {
                Self.remove(archive)
                throw ModelStoreError.pkusegUnavailable(reason: "\(source.modelURL.absoluteString) has sha256 \(record.sha256), not the pinned"
                                                        + " \(source.modelSHA256); the download was deleted")
            }
            progress(.fileVerified(file: source.modelArchiveName, size: record.size, sha256: record.sha256))
        }
        let wheel = downloads.appendingPathComponent(source.wheel.name)
        if !source.wheel.identities.contains(where: { Int64($0.size) == Self.fileSize(wheel) }) {
            // No hub token: the wheel comes from PyPI, not the hub.
            _ = try await Self.failingAsPkusegUnavailable(source.wheelURL) {
                try await download(source.wheel, index: 2, count: 2, from: source.wheelURL, repository: "PyPI",
                                   revision: source.wheel.name, token: nil, to: wheel, progress: progress)
            }
        }

        func failure(in url: URL) -> (String) -> ModelStoreError {
            { .pkusegUnavailable(reason: "\(url.lastPathComponent): \($0)") }
        }
        var files: [(name: String, data: Data)] = []
        // The archive is verified by hash, so the sizes its directory claims are trusted (within reason).
        for name in [PkusegModel.featuresFileName, PkusegModel.weightsFileName] {
            files.append((name, try Self.memberData(name, of: archive, sizeLimit: source.modelSizeLimit * 8, fail: failure(in: archive))))
        }
        for (member, identity, name) in [(source.wordListMember, source.wordList, PkusegWordList.defaultFileName),
                                         (source.licenseMember, source.license, "LICENSE")] {
            let data = try Self.memberData(member, of: wheel, sizeLimit: identity.size, fail: failure(in: wheel))
            var hasher = SHA256()
            hasher.update(data)
            let digest = hasher.finalizeHex()
            guard data.count == identity.size, digest == identity.sha256 else {
                throw failure(in: wheel)("\(member) has sha256 \(digest), not the pinned \(identity.sha256)")
            }
            files.append((name, data))
        }
        files.append(("SOURCE", Data("""
            spacy-pkuseg 1.0.2's segmentation data, installed by chatterstream's model store:
            features.msgpack and weights.npz from \(source.modelURL.absoluteString) (sha256 \(source.modelSHA256));
            default.pkl and LICENSE (MIT) from \(source.wheelURL.absoluteString) (sha256 \(source.wheel.identities[0].sha256)).

            """.utf8)))

        // Staged beside the destination, then renamed: the location never sees half a model.
        let parent = destination.deletingLastPathComponent()
        let staging = parent.appendingPathComponent(".\(destination.lastPathComponent).staging-\(UUID().uuidString)", isDirectory: true)
        try Self.createDirectory(staging)
        defer { Self.remove(staging) }
        do {
            for (name, data) in files { try data.write(to: staging.appendingPathComponent(name)) }
            if FileManager.default.fileExists(atPath: destination.path) { try FileManager.default.removeItem(at: destination) }
            try FileManager.default.moveItem(at: staging, to: destination)
        } catch {
            throw ModelStoreError.io(path: destination.path, reason: "\(error)")
        }
        Self.remove(downloads)
        return destination
    }

    /// `body`'s store errors as `pkusegUnavailable`, naming `url`: the hub-worded advice of a download
    /// error (HF_ENDPOINT, --revision) does not fit GitHub or PyPI.
    private static func failingAsPkusegUnavailable<T>(_ url: URL, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ModelStoreError {
            throw ModelStoreError.pkusegUnavailable(reason: "cannot download \(url.absoluteString) (\(error))")
        }
    }
}
