import ChatterModels
import Foundation
import Testing
import TestSupport
@testable import Chatterstream

/// The model store installs spacy-pkuseg's model for the multilingual family: the model archive from
/// its pinned URL (here a loopback server) checked by its pinned sha256, the wheel's word list and
/// licence verified, all renamed into place together; a model that cannot be had is a typed error
/// (callers warn: Chinese is then coded unsegmented) and installs nothing.
@Suite struct PkusegModelInstallTests {
    static let assets = Fixture.root.deletingLastPathComponent().appendingPathComponent("Assets/pkuseg/synthetic")
    static let words = Fixture.root.appendingPathComponent("tokenizers/pkuseg_words_cut.pkl")

    /// A zip of `members`, each deflated (method 8) or stored (0).
    static func zip(_ members: [(String, Data)], method: UInt16) throws -> Data {
        var out = Data(), central = Data()
        func le<T: FixedWidthInteger>(_ v: T, _ into: inout Data) { withUnsafeBytes(of: v.littleEndian) { into.append(contentsOf: $0) } }
        for (name, content) in members {
            let stored = method == 8 ? try PerthCheckpointInstallTests.deflateRaw(content) : content
            let offset = out.count
            le(UInt32(0x0403_4B50), &out); le(UInt16(20), &out); le(UInt16(0), &out); le(method, &out)
            le(UInt32(0), &out); le(UInt32(0), &out); le(UInt32(stored.count), &out); le(UInt32(content.count), &out)
            le(UInt16(name.utf8.count), &out); le(UInt16(0), &out); out.append(contentsOf: Array(name.utf8)); out.append(stored)
            le(UInt32(0x0201_4B50), &central); le(UInt16(20), &central); le(UInt16(20), &central); le(UInt16(0), &central)
            le(method, &central); le(UInt32(0), &central); le(UInt32(0), &central)
            le(UInt32(stored.count), &central); le(UInt32(content.count), &central)
            le(UInt16(name.utf8.count), &central); le(UInt16(0), &central); le(UInt16(0), &central)
            le(UInt16(0), &central); le(UInt16(0), &central); le(UInt32(0), &central); le(UInt32(offset), &central)
            central.append(contentsOf: Array(name.utf8))
        }
        let directoryOffset = out.count
        out.append(central)
        le(UInt32(0x0605_4B50), &out); le(UInt16(0), &out); le(UInt16(0), &out)
        le(UInt16(members.count), &out); le(UInt16(members.count), &out)
        le(UInt32(central.count), &out); le(UInt32(directoryOffset), &out); le(UInt16(0), &out)
        return out
    }

    struct Served {
        let store: ModelStore
        let archive: Data
        let wordList: Data
    }

    /// A store whose pkuseg source is the loopback server, serving the synthetic model as the archive and
    /// the fixture's word list in a wheel; `pinnedModelHash` replaces the archive's true sha256.
    static func store(home: TemporaryDirectory, server: LoopbackHubServer, method: UInt16 = 8, offline: Bool = false,
                      pinnedModelHash: String? = nil, serveModel: Bool = true) throws -> Served {
        let features = try Data(contentsOf: assets.appendingPathComponent(PkusegModel.featuresFileName))
        let weights = try Data(contentsOf: assets.appendingPathComponent(PkusegModel.weightsFileName))
        let archive = try zip([(PkusegModel.featuresFileName, features), (PkusegModel.weightsFileName, weights)], method: method)
        let wordList = try Data(contentsOf: words), license = Data("MIT License\n".utf8)
        let source = PkusegModelSource.spacyPkuseg102
        let wheel = try zip([("spacy_pkuseg/__init__.py", Data()), (source.wordListMember, wordList), (source.licenseMember, license)], method: 8)
        if serveModel { server.serve(repository: "github", file: source.modelArchiveName, data: archive) }
        server.serve(repository: "pypi", file: source.wheel.name, data: wheel)

        var environment = ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint]
        if offline { environment["HF_HUB_OFFLINE"] = "1" }
        var store = ModelStore(environment: environment)
        store.pkusegSource = PkusegModelSource(
            modelURL: URL(string: "\(server.endpoint)/github/resolve/main/\(source.modelArchiveName)")!,
            modelArchiveName: source.modelArchiveName, modelSHA256: pinnedModelHash ?? SHA256.hex(of: archive),
            modelSizeLimit: 4 << 20,
            wheelURL: URL(string: "\(server.endpoint)/pypi/resolve/main/\(source.wheel.name)")!,
            wheel: PublishedFile(name: source.wheel.name, identities: [FileIdentity(size: wheel.count, sha256: SHA256.hex(of: wheel))]),
            wordListMember: source.wordListMember, wordList: FileIdentity(size: wordList.count, sha256: SHA256.hex(of: wordList)),
            licenseMember: source.licenseMember, license: FileIdentity(size: license.count, sha256: SHA256.hex(of: license)))
        return Served(store: store, archive: archive, wordList: wordList)
    }

    @Test(arguments: [UInt16(8), 0])
    func theModelIsFetchedVerifiedUnpackedAndKept(method: UInt16) async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        let served = try Self.store(home: home, server: server, method: method)
        let store = served.store
        let events = EventLog()
        let directory = try await store.ensurePkusegModel(progress: { events.append($0) })
        #expect(directory == store.pkusegModelDirectory)
        #expect(PkusegModelLocation.holdsFiles(directory))
        #expect(PkusegModelLocation.locate(cacheRoot: store.settings.cacheRoot, environment: [:],
                                           workingDirectory: home.url)?.path == directory.path)
        #expect(try Data(contentsOf: directory.appendingPathComponent(PkusegWordList.defaultFileName)) == served.wordList)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("LICENSE").path))
        // The installed files are the model: it segments as the fixture says upstream does.
        #expect(try PkusegSegmenter(directory: directory).cut("我是学生。") == ["我", "是", "学生", "。"])
        // Verified by its pinned hash, never reported as "accepted unverified".
        #expect(events.all.contains(.fileVerified(file: "spacy_ontonotes.zip", size: Int64(served.archive.count), sha256: SHA256.hex(of: served.archive))))
        #expect(!events.all.contains { if case .fileAcceptedUnpinned = $0 { true } else { false } })
        let requests = server.requests.count
        #expect(try await store.ensurePkusegModel() == directory)
        #expect(server.requests.count == requests, "installed once")
        #expect(!FileManager.default.fileExists(atPath: home.url.appendingPathComponent("chatterstream/.downloads/pkuseg").path))
        #expect(!store.needsPkusegModel(for: .chatterboxMultilingual) && !store.needsPkusegModel(for: .chatterbox))
    }

    @Test func aWrongModelNoModelOrNoNetworkIsATypedErrorAndInstallsNothing() async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let tampered = try Self.store(home: try TemporaryDirectory(), server: server, pinnedModelHash: String(repeating: "0", count: 64)).store
        // Whether the family needs it depends on whether a model is found anywhere (CI fetches one into .cache).
        #expect(tampered.needsPkusegModel(for: .chatterboxMultilingualV2) == (PkusegModelLocation.locate(cacheRoot: tampered.settings.cacheRoot) == nil))
        #expect(!tampered.needsPkusegModel(for: .chatterboxTurbo))
        do {
            _ = try await tampered.ensurePkusegModel()
            Issue.record("a model with the wrong hash was installed")
        } catch let error as ModelStoreError {
            guard case let .pkusegUnavailable(reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("spacy_ontonotes.zip has sha256") && reason.contains("not the pinned 0000"), "\(reason)")
        }
        #expect(!FileManager.default.fileExists(atPath: tampered.pkusegModelDirectory.path))

        let emptyServer = try LoopbackHubServer()
        defer { emptyServer.stop() }
        let missing = try Self.store(home: try TemporaryDirectory(), server: emptyServer, serveModel: false).store
        do {
            _ = try await missing.ensurePkusegModel()
            Issue.record("an unpublished model was installed")
        } catch let error as ModelStoreError {
            guard case let .pkusegUnavailable(reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("cannot download") && reason.contains("404"), "\(reason)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing.pkusegModelDirectory.path))

        let offline = try Self.store(home: try TemporaryDirectory(), server: server, offline: true).store
        do {
            _ = try await offline.ensurePkusegModel()
            Issue.record("offline install succeeded")
        } catch let error as ModelStoreError {
            guard case .pkusegUnavailable = error else { Issue.record("\(error)"); return }
            #expect(error.description.contains("HF_HUB_OFFLINE") && error.description.contains("tools/pkuseg/fetch-model.sh")
                && error.description.contains("unsegmented"))
        }
    }

    /// The pins are the ones tools/pkuseg/fetch-model.sh checks (and spacy-pkuseg 1.0.2's config.py holds).
    @Test func thePinsMatchTheFetchScript() throws {
        let script = try String(contentsOf: Fixture.root.appendingPathComponent("../../tools/pkuseg/fetch-model.sh").standardized, encoding: .utf8)
        let source = PkusegModelSource.spacyPkuseg102
        for pin in [source.modelSHA256, source.wheel.identities[0].sha256, source.wordList.sha256, source.license.sha256,
                    source.modelURL.absoluteString] {
            #expect(script.contains(pin), "\(pin)")
        }
        #expect(script.contains(source.wheelURL.absoluteString.replacingOccurrences(of: source.wheel.name, with: "$wheel")))
        #expect(source.wheelURL.lastPathComponent == source.wheel.name && source.modelURL.lastPathComponent == source.modelArchiveName)
    }
}

private final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ModelStoreEvent] = []
    func append(_ event: ModelStoreEvent) { lock.withLock { events.append(event) } }
    var all: [ModelStoreEvent] { lock.withLock { events } }
}
