import CZlib
import ChatterModels
import Foundation
import Testing
import TestSupport
@testable import Chatterstream

/// The model store installs the Perth watermarker's checkpoint as it installs a model: the wheel
/// from its pinned URL (here a loopback server), verified; the member inflated and verified; and a
/// missing checkpoint that cannot be installed is an error that says how to turn watermarking off.
@Suite struct PerthCheckpointInstallTests {
    /// Raw deflate (zip method 8) of `data`.
    static func deflateRaw(_ data: Data) throws -> Data {
        var stream = z_stream()
        try #require(deflateInit2_(&stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var output = Data(count: Int(deflateBound(&stream, uLong(data.count))))
        let produced = data.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                return deflate(&stream, Z_FINISH) == Z_STREAM_END ? Int(stream.total_out) : -1
            }
        }
        try #require(produced > 0)
        return output.prefix(produced)
    }

    /// A one-member zip (`method` 0 stored, 8 deflated).
    static func wheel(member: String, content: Data, method: UInt16) throws -> Data {
        let stored = method == 8 ? try deflateRaw(content) : content
        var out = Data(), central = Data()
        func le<T: FixedWidthInteger>(_ v: T, _ into: inout Data) { withUnsafeBytes(of: v.littleEndian) { into.append(contentsOf: $0) } }
        le(UInt32(0x0403_4B50), &out); le(UInt16(20), &out); le(UInt16(0), &out); le(method, &out)
        le(UInt32(0), &out); le(UInt32(0), &out); le(UInt32(stored.count), &out); le(UInt32(content.count), &out)
        le(UInt16(member.utf8.count), &out); le(UInt16(0), &out); out.append(contentsOf: Array(member.utf8)); out.append(stored)
        le(UInt32(0x0201_4B50), &central); le(UInt16(20), &central); le(UInt16(20), &central); le(UInt16(0), &central)
        le(method, &central); le(UInt32(0), &central); le(UInt32(0), &central)
        le(UInt32(stored.count), &central); le(UInt32(content.count), &central)
        le(UInt16(member.utf8.count), &central); le(UInt16(0), &central); le(UInt16(0), &central)
        le(UInt16(0), &central); le(UInt16(0), &central); le(UInt32(0), &central); le(UInt32(0), &central)
        central.append(contentsOf: Array(member.utf8))
        let directoryOffset = out.count
        out.append(central)
        le(UInt32(0x0605_4B50), &out); le(UInt16(0), &out); le(UInt16(0), &out); le(UInt16(1), &out); le(UInt16(1), &out)
        le(UInt32(central.count), &out); le(UInt32(directoryOffset), &out); le(UInt16(0), &out)
        return out
    }

    static func store(home: TemporaryDirectory, server: LoopbackHubServer, wheel: Data, checkpoint: Data, offline: Bool = false,
                      pinnedCheckpointHash: String? = nil) -> ModelStore {
        var environment = ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint]
        if offline { environment["HF_HUB_OFFLINE"] = "1" }
        var store = ModelStore(environment: environment)
        server.serve(repository: "pypi", file: "resemble_perth-1.0.1-py3-none-any.whl", data: wheel)
        store.perthSource = PerthCheckpointSource(
            wheelURL: URL(string: "\(server.endpoint)/pypi/resolve/main/resemble_perth-1.0.1-py3-none-any.whl")!,
            wheel: PublishedFile(name: "resemble_perth-1.0.1-py3-none-any.whl",
                                 identities: [FileIdentity(size: wheel.count, sha256: SHA256.hex(of: wheel))]),
            member: PerthCheckpointSource.resemblePerth101.member,
            checkpoint: FileIdentity(size: checkpoint.count, sha256: pinnedCheckpointHash ?? SHA256.hex(of: checkpoint)))
        return store
    }

    @Test(arguments: [UInt16(8), 0])
    func theCheckpointIsFetchedInflatedVerifiedAndKept(method: UInt16) async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        let checkpoint = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7 / 3) })
        let wheel = try Self.wheel(member: PerthCheckpointSource.resemblePerth101.member, content: checkpoint, method: method)
        let store = Self.store(home: home, server: server, wheel: wheel, checkpoint: checkpoint)
        let path = try await store.ensurePerthCheckpoint()
        #expect(path == store.perthCheckpointPath)
        #expect(try Data(contentsOf: path) == checkpoint)
        let requests = server.requests.count
        #expect(try await store.ensurePerthCheckpoint() == path)
        #expect(server.requests.count == requests, "installed once")
        #expect(!FileManager.default.fileExists(atPath: home.url.appendingPathComponent("chatterstream/.downloads/perth").path))
        print("Perth install (method \(method)): \(wheel.count)-byte wheel → \(checkpoint.count)-byte checkpoint at \(path.path)")
    }

    @Test func aWrongCheckpointOrNoNetworkIsATypedErrorAndInstallsNothing() async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        let checkpoint = Data(repeating: 7, count: 5000)
        let wheel = try Self.wheel(member: PerthCheckpointSource.resemblePerth101.member, content: checkpoint, method: 8)
        let tampered = Self.store(home: home, server: server, wheel: wheel, checkpoint: checkpoint,
                                  pinnedCheckpointHash: String(repeating: "0", count: 64))
        await #expect(throws: ModelStoreError.self) { _ = try await tampered.ensurePerthCheckpoint() }
        #expect(!FileManager.default.fileExists(atPath: tampered.perthCheckpointPath.path))
        let offline = Self.store(home: try TemporaryDirectory(), server: server, wheel: wheel, checkpoint: checkpoint, offline: true)
        do {
            _ = try await offline.ensurePerthCheckpoint()
            Issue.record("offline install succeeded")
        } catch let error as ModelStoreError {
            print("offline: \(error)")
            #expect(error.description.contains("--no-watermark"))
        }
    }

    /// The published pin is the one tools/perth/fetch-checkpoint.sh checks.
    @Test func thePinMatchesTheFetchScript() throws {
        let script = try String(contentsOf: Fixture.root.appendingPathComponent("../../tools/perth/fetch-checkpoint.sh").standardized,
                                encoding: .utf8)
        let source = PerthCheckpointSource.resemblePerth101
        #expect(script.contains(source.wheel.identities[0].sha256) && script.contains(source.checkpoint.sha256))
        #expect(source.wheelURL.lastPathComponent == source.wheel.name)
    }
}
