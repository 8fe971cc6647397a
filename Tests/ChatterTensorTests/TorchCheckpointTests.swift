import Foundation
import Testing
import TestSupport
@testable import ChatterTensor

@Suite struct TorchCheckpointTests {
    /// Compares every tensor our reader finds with what `torch.load(weights_only=True)` produced.
    func expectMatchesTorchLoad(_ checkpoint: TorchCheckpoint, _ fixture: Fixture) throws {
        let ours = Dictionary(checkpoint.tensors().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for testCase in fixture.cases {
            let name = testCase.string("name")
            let expected = try fixture.tensor(testCase, "value")
            let actual = try #require(ours[name], "tensor \(name) not found; have \(ours.keys.sorted())")
            #expect(actual.shape == testCase.ints("shape"), "\(name)")
            #expect(actual.strides == testCase.ints("stride"), "\(name): strides as saved")
            #expect(actual.dtype == expected.dtype, "\(name)")
            if expected.dtype.isFloatingPoint {
                #expect(actual.scalars() == expected.scalars(), "\(name)")
            } else {
                #expect(actual.integers() == expected.integers(), "\(name)")
            }
        }
        #expect(ours.count == fixture.cases.count, "found \(ours.keys.sorted())")
    }

    @Test func readsEveryTrapOfASyntheticCheckpoint() throws {
        let fixture = try Fixture("formats/synthetic_checkpoint")
        let checkpoint = try TorchCheckpoint(path: Fixture.root.appendingPathComponent("formats/synthetic_checkpoint.pt").path)
        #expect(checkpoint.archivePrefix == "synthetic_checkpoint")  // torch 2.6 names the folder after the file
        try expectMatchesTorchLoad(checkpoint, fixture)
        guard case let .dict(root) = checkpoint.root else { Issue.record("root is not a dict"); return }
        #expect(root["count"]?.intValue == 250000)
        if case let .float(ratio)? = root["ratio"] { #expect(ratio == 0.5) } else { Issue.record("ratio missing") }
        if case .none? = root["nothing"] {} else { Issue.record("None not preserved") }
        // Tensors are views into the mapped file, not copies.
        #expect(try checkpoint.tensor("plain").storage.kind == .mapped)
    }

    @Test func readsTheRealTurboBuiltInVoice() throws {
        let fixture = try Fixture("formats/turbo_conds")
        let path = Fixture.root.appendingPathComponent("../../../shared/assets/chatterbox-turbo/conds.pt").standardized.path
        let checkpoint = try TorchCheckpoint(path: path)
        try expectMatchesTorchLoad(checkpoint, fixture)
        let feat = try checkpoint.tensor("gen.prompt_feat")
        #expect(feat.shape == [1, 500, 80])
        #expect(feat.strides == [80 * 500, 1, 500], "prompt_feat is saved transposed")
    }

    static let perthCheckpoint = Fixture.root.appendingPathComponent("../../.cache/perth/perth_net_250000.pth.tar").standardized.path

    /// The real Perth watermarker checkpoint (37 MB, from the resemble-perth 1.0.1 wheel; fetched by
    /// `tools/perth/fetch-checkpoint.sh`, which CI runs). Checked against torch.load's sums and first values.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: perthCheckpoint), "run tools/perth/fetch-checkpoint.sh first"))
    func readsTheRealPerthCheckpoint() throws {
        let fixture = try Fixture("formats/perth_checkpoint_summary")
        let checkpoint = try TorchCheckpoint(path: Self.perthCheckpoint)
        #expect(checkpoint.archivePrefix == "archive")
        let ours = Dictionary(checkpoint.tensors().map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var checked = 0
        for testCase in fixture.cases where testCase.name != "step" {
            let name = testCase.string("name")
            let tensor = try #require(ours[name], "\(name) missing")
            #expect(tensor.shape == testCase.ints("shape"))
            let values = tensor.scalars()
            let sum = values.reduce(0.0) { $0 + Double($1) }
            let expectedSum = Double(try fixture.tensor(testCase, "sum").scalars()[0])
            #expect(abs(sum - expectedSum) <= 1e-4 * max(1, abs(expectedSum)), "\(name): sum \(sum) vs \(expectedSum)")
            #expect(Array(values.prefix(16)) == (try fixture.tensor(testCase, "head").scalars()), "\(name)")
            checked += 1
        }
        #expect(checked == 59)
        #expect(checkpoint.root.dictValue?["step"]?.intValue == 250000)
        print("Perth checkpoint: \(checked) tensors match torch.load")
    }

    @Test func refusesBrokenAndHostileFiles() throws {
        let fixture = try Fixture("formats/bad_checkpoints")
        for testCase in fixture.cases where testCase.has("file") {
            let path = Fixture.root.appendingPathComponent("formats").appendingPathComponent(testCase.string("file")).path
            do {
                _ = try TorchCheckpoint(path: path)
                Issue.record("\(testCase.name): accepted")
            } catch let error as TensorError {
                print("\(testCase.name): \(error)")
                #expect(error.description.contains(path), "\(testCase.name): message must name the file")
                #expect(error.description.contains(testCase.string("error")), "\(testCase.name): \(error)")
            }
        }
    }

    /// 1,000 seeded mutations of the pickle stream (and of the zip around it): each must load or
    /// throw a `TensorError`; nothing may crash or read outside the file.
    @Test func survivesOneThousandPickleMutations() throws {
        let scratch = try TemporaryDirectory()
        let source = Fixture.root.appendingPathComponent("formats/synthetic_checkpoint.pt").path
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        let archive = try ZipArchive(mapping: MappedFile(path: source))
        let pickle = try #require(archive.entries.first { $0.name.hasSuffix("data.pkl") })
        let pickleRange = pickle.dataOffset..<(pickle.dataOffset + pickle.size)
        var rng = SplitMix64(seed: 0xB1C_4E11)
        var loaded = 0, rejected = 0
        for iteration in 0..<1000 {
            var bytes = original
            let mutations = 1 + Int(rng.next() % 3)
            for _ in 0..<mutations {
                // Nine in ten mutations hit the pickle; the rest hit the zip structure.
                let inPickle = rng.next() % 10 != 0
                let range = inPickle ? pickleRange : 0..<bytes.count
                let i = range.lowerBound + Int(rng.next() % UInt64(range.count))
                switch rng.next() % 4 {
                case 0: bytes[i] ^= UInt8(1 << (rng.next() % 8))
                case 1: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 2:  // an opcode byte from the torch subset, or a small integer operand
                    let opcodes: [UInt8] = Array("().JKMQRXbchjqrstu}]ae".utf8) + [0x80, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x4E]
                    bytes[i] = opcodes[Int(rng.next() % UInt64(opcodes.count))]
                default:
                    if rng.next() % 8 == 0 { bytes = Array(bytes.prefix(i)) } else { bytes[i] = 0xFF }
                }
                if bytes.count <= pickleRange.upperBound { break }
            }
            let path = scratch.filePath("mutant-\(iteration).pt")
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            do {
                let checkpoint = try TorchCheckpoint(path: path)
                for (_, tensor) in checkpoint.tensors() { _ = tensor.contiguous().count }
                loaded += 1
            } catch is TensorError {
                rejected += 1
            }
            try? FileManager.default.removeItem(atPath: path)
        }
        print("pickle mutation test: \(loaded) mutants loaded, \(rejected) rejected with TensorError, 0 crashes")
        #expect(loaded + rejected == 1000)
        #expect(rejected > 300)
    }
}

/// A torch.save-style zip written byte by byte, for files no torch would write.
struct HostileTorchFile {
    /// Pickle opcodes for `{key: _rebuild_tensor_v2(storage(storageKey, FloatStorage, count), offset, size, stride), …}`.
    struct TensorRecord {
        var name: String
        var storageKey = "0"
        var storageCount: Int
        var offset = 0
        var size: [Int]
        var stride: [Int]
    }

    static func pickle(_ tensors: [TensorRecord]) -> [UInt8] {
        var out: [UInt8] = [0x80, 0x02, 0x7D, 0x28]
        func string(_ s: String) { out.append(0x58); out += withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init); out += Array(s.utf8) }
        func int(_ v: Int) { out += [0x8A, 0x08]; out += withUnsafeBytes(of: Int64(v).littleEndian, Array.init) }
        func global(_ module: String, _ name: String) { out.append(0x63); out += Array("\(module)\n\(name)\n".utf8) }
        for tensor in tensors {
            string(tensor.name)
            global("torch._utils", "_rebuild_tensor_v2")
            out.append(0x28)
            out.append(0x28); string("storage"); global("torch", "FloatStorage"); string(tensor.storageKey); string("cpu")
            int(tensor.storageCount); out += [0x74, 0x51]
            int(tensor.offset)
            out.append(0x28); tensor.size.forEach(int); out.append(0x74)
            out.append(0x28); tensor.stride.forEach(int); out.append(0x74)
            out.append(0x89)
            out += [0x74, 0x52]
        }
        out += [0x75, 0x2E]
        return out
    }

    /// A stored zip of `entries`; `zip64LocalOffset` replaces the first entry's central-directory
    /// local header offset with a ZIP64 extra field holding that value.
    static func zip(_ entries: [(String, [UInt8])], zip64LocalOffset: Int? = nil) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T, _ into: inout [UInt8]) { into += withUnsafeBytes(of: v.littleEndian, Array.init) }
        for (index, (name, data)) in entries.enumerated() {
            let offset = out.count
            le(UInt32(0x0403_4B50), &out); le(UInt16(20), &out); le(UInt16(0), &out); le(UInt16(0), &out)
            le(UInt32(0), &out); le(UInt32(0), &out); le(UInt32(data.count), &out); le(UInt32(data.count), &out)
            le(UInt16(name.utf8.count), &out); le(UInt16(0), &out); out += Array(name.utf8); out += data
            let zip64 = index == 0 ? zip64LocalOffset : nil
            le(UInt32(0x0201_4B50), &central); le(UInt16(20), &central); le(UInt16(20), &central); le(UInt16(0), &central)
            le(UInt16(0), &central); le(UInt32(0), &central); le(UInt32(0), &central)
            le(UInt32(data.count), &central); le(UInt32(data.count), &central)
            le(UInt16(name.utf8.count), &central); le(UInt16(zip64 == nil ? 0 : 12), &central); le(UInt16(0), &central)
            le(UInt16(0), &central); le(UInt16(0), &central); le(UInt32(0), &central)
            le(zip64 == nil ? UInt32(offset) : 0xFFFF_FFFF, &central)
            central += Array(name.utf8)
            if let zip64 { le(UInt16(1), &central); le(UInt16(8), &central); le(UInt64(zip64), &central) }
        }
        let directoryOffset = out.count
        out += central
        le(UInt32(0x0605_4B50), &out); le(UInt16(0), &out); le(UInt16(0), &out)
        le(UInt16(entries.count), &out); le(UInt16(entries.count), &out)
        le(UInt32(central.count), &out); le(UInt32(directoryOffset), &out); le(UInt16(0), &out)
        return out
    }

    static func checkpoint(_ tensors: [TensorRecord], storages: [String: Int]) -> [UInt8] {
        var entries: [(String, [UInt8])] = [("archive/data.pkl", pickle(tensors))]
        for (key, count) in storages.sorted(by: { $0.key < $1.key }) {
            entries.append(("archive/data/\(key)", (0..<count).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) }))
        }
        entries.append(("archive/version", Array("3\n".utf8)))
        return zip(entries)
    }
}

/// Issue 19's `.pt` reproducers: each crashed, read past its zip entry or asked for gigabytes; each
/// is now a `TensorError` naming the file (and the tensor), or, for the empty [6, 0] tensor, loads.
@Suite struct HostileTorchCheckpointTests {
    static func load(_ bytes: [UInt8]) throws -> TorchCheckpoint {
        let scratch = try TemporaryDirectory()
        let path = scratch.filePath("hostile.pt")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try TorchCheckpoint(path: path)
    }

    static func expectRefused(_ what: String, _ bytes: [UInt8], mentioning needle: String) {
        do {
            let checkpoint = try load(bytes)
            for (_, tensor) in checkpoint.tensors() { _ = tensor.contiguous().scalars() }
            Issue.record("\(what): accepted")
        } catch let error as TensorError {
            print("\(what): \(error)")
            #expect(error.description.contains(needle), "\(what): \(error)")
        } catch {
            Issue.record("\(what): untyped error \(error)")
        }
    }

    typealias Record = HostileTorchFile.TensorRecord

    @Test func anEmptyTensorWithAHugeStorageOffsetIsRefused() {
        for offset in [1 << 62, Int.max, Int.max / 4 + 1, 5] {
            Self.expectRefused("offset \(offset)", HostileTorchFile.checkpoint(
                [Record(name: "w", storageCount: 4, offset: offset, size: [0], stride: [1])], storages: ["0": 4]),
                mentioning: "storage offset")
        }
    }

    @Test func aStorageKeyReusedWithALargerCountCannotReadPastItsEntry() {
        // Far past the archive (was SIGSEGV) and just past the entry, into the next zip header (was a
        // silent read of header bytes into the tensor).
        for count in [1 << 40, 1_000_000, 6] {
            Self.expectRefused("reused key, count \(count)", HostileTorchFile.checkpoint(
                [Record(name: "w", storageCount: 4, size: [4], stride: [1]),
                 Record(name: "v", storageCount: count, size: [count], stride: [1])], storages: ["0": 4]),
                mentioning: "'data/0'")
        }
    }

    @Test func zeroStridesCannotAskForAHugeCopy() {
        Self.expectRefused("zero strides", HostileTorchFile.checkpoint(
            [Record(name: "w", storageCount: 1, size: [1 << 15, 1 << 15], stride: [0, 0])], storages: ["0": 1]),
            mentioning: "views larger than their storage")
    }

    @Test func anEmptyTensorWhoseOtherDimensionsOverflowIsRefused() {
        Self.expectRefused("[0, 2³¹, 2³¹, 2³¹]", HostileTorchFile.checkpoint(
            [Record(name: "w", storageCount: 4, size: [0, 1 << 31, 1 << 31, 1 << 31], stride: [1, 1, 1, 1])], storages: ["0": 4]),
            mentioning: "overflows")
    }

    @Test func anEmptyTensorOfShape6x0Loads() throws {
        let checkpoint = try Self.load(HostileTorchFile.checkpoint(
            [Record(name: "w", storageCount: 0, size: [6, 0], stride: [1, 1])], storages: ["0": 0]))
        let tensor = try checkpoint.tensor("w")
        #expect(tensor.shape == [6, 0] && tensor.isContiguous && tensor.scalars().isEmpty)
        tensor.contiguous().withUnsafeRawBytes { #expect($0.count == 0) }
        Tensor(zeros: [0, 3]).transposed().withUnsafeRawBytes { #expect($0.count == 0) }
    }

    @Test func aZip64LocalHeaderOffsetNearIntMaxIsAFormatError() {
        for offset in [Int.max, Int.max - 20, 1 << 62] {
            Self.expectRefused("local header at \(offset)", HostileTorchFile.zip(
                [("archive/data.pkl", HostileTorchFile.pickle([]))], zip64LocalOffset: offset), mentioning: "local header")
        }
    }

    /// The writer above is faithful: the same records with sane numbers load with the values written.
    @Test func theHandWrittenCheckpointLoadsWhenItIsSane() throws {
        let checkpoint = try Self.load(HostileTorchFile.checkpoint(
            [Record(name: "w", storageCount: 6, offset: 1, size: [2, 2], stride: [1, 2])], storages: ["0": 6]))
        #expect(try checkpoint.tensor("w").scalars() == [1, 3, 2, 4])
    }
}
