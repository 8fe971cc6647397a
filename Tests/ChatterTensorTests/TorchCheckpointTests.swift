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
