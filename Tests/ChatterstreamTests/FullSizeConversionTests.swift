import ChatterModels
import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import Chatterstream

/// Round trip on full-size random upstream checkpoints (all real key names and shapes), made by
/// `tools/checkpoints/make_random_checkpoint.py` — gigabytes, so never committed and not in CI:
///
///     for f in chatterbox chatterbox-turbo chatterbox-multilingual; do
///       tools/fixtures/.venv/bin/python tools/checkpoints/make_random_checkpoint.py --family $f --out generated/$f; done
///     CHATTERSTREAM_GENERATED_CHECKPOINTS=generated swift test --filter FullSizeConversion
@Suite(.serialized) struct FullSizeConversionTests {
    static let root = ProcessInfo.processInfo.environment["CHATTERSTREAM_GENERATED_CHECKPOINTS"]

    static func available(_ family: ModelFamily) -> Bool {
        guard let root else { return false }
        return FileManager.default.fileExists(atPath: URL(fileURLWithPath: root).appendingPathComponent(family.rawValue).path)
    }

    @Test(.enabled(if: available(.chatterbox), "set CHATTERSTREAM_GENERATED_CHECKPOINTS"))
    func original() throws { try roundTrip(.chatterbox) }

    @Test(.enabled(if: available(.chatterboxTurbo), "set CHATTERSTREAM_GENERATED_CHECKPOINTS"))
    func turbo() throws { try roundTrip(.chatterboxTurbo) }

    @Test(.enabled(if: available(.chatterboxMultilingual), "set CHATTERSTREAM_GENERATED_CHECKPOINTS"))
    func multilingual() throws { try roundTrip(.chatterboxMultilingual) }

    /// The converted Turbo T3 loads with its config inferred from the shapes, uses the transposed
    /// Conv1D weights in place (no copy) and decodes.
    func loadTurboT3(_ file: SafetensorsFile) throws {
        #expect(file.metadata[GPT2Conv1DLayout.metadataKey] == GPT2Conv1DLayout.transposedValue)
        let config = try T3Config.inferred(from: file)
        #expect(config == T3Config.turbo)
        let loading = ContinuousClock.now
        let t3 = try T3(weights: file)  // config inferred, as the streaming layer builds it
        let loaded = ContinuousClock.now - loading
        let stored = try file.tensor("tfmr.h.23.mlp.c_proj.weight")
        #expect(stored.shape == [1024, 4096])
        let iterator = try T3TokenIterator(model: t3, speakerEmbedding: [Float](repeating: 0.1, count: 256),
                                           promptTokens: Array(0..<375), textTokens: [15496, 995, 13],
                                           parameters: { var p = T3SamplingParameters.turbo; p.maxNewTokens = 3; return p }())
        let tokens = Array(iterator)
        #expect(t3.config == .turbo)
        #expect(!tokens.isEmpty && tokens.allSatisfy { (0..<6563).contains($0) })
        print("chatterbox-turbo: converted T3 loaded in \(loaded), 3 tokens \(tokens)")
    }

    func roundTrip(_ family: ModelFamily) throws {
        let source = URL(fileURLWithPath: Self.root!).appendingPathComponent(family.rawValue)
        let temporary = try TemporaryDirectory()
        let output = temporary.path("converted")
        var options = ModelConverter.Options()
        options.verifySourceHashes = false  // random weights are not the published files; sizes still are
        let started = ContinuousClock.now
        let summary = try ModelConverter().convert(from: source, to: output, options: options)
        let converted = ContinuousClock.now - started
        let opening = ContinuousClock.now
        let model = try ConvertedModel(directory: output)
        let opened = ContinuousClock.now - opening

        var compared = 0, folded = 0
        for plan in ModelConverter.plans(family) {
            let upstream = try ModelConverter().loadTensors(source.appendingPathComponent(plan.source))
            let byName = Dictionary(upstream.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
            let file = try model.file(plan.output)
            var expectedNames = Set<String>()
            for (name, tensor) in upstream {
                if ModelConverter.unusedTensors.contains(name) || name.hasSuffix("num_batches_tracked") || name.hasSuffix(".original1") { continue }
                if name.hasSuffix(".parametrizations.weight.original0") {
                    let base = String(name.dropLast(".parametrizations.weight.original0".count))
                    expectedNames.insert(base + ".weight")
                    let expected = foldWeightNorm(magnitude: tensor, direction: byName[base + ".parametrizations.weight.original1"]!)
                    #expect(try file.tensor(base + ".weight").scalars() == expected.scalars(), "\(plan.output) \(base).weight")
                    folded += 1
                } else {
                    expectedNames.insert(name)
                    let ours = try file.tensor(name)
                    // The converter stores GPT-2 Conv1D weights transposed ([out, in]).
                    let transposed = plan.group == .t3 && GPT2Conv1DLayout.isConv1DWeight(name)
                    let tensor = transposed ? tensor.transposed().copy() : tensor
                    let same = ours.shape == tensor.shape && ours.dtype == tensor.dtype && ours.withUnsafeRawBytes { a in
                        tensor.contiguous().withUnsafeRawBytes { b in a.count == b.count && memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
                    }
                    #expect(same, "\(plan.output) \(name) differs from \(plan.source)")
                }
                compared += 1
            }
            #expect(Set(file.names) == expectedNames, "\(plan.output): extra \(Set(file.names).subtracting(expectedNames)), missing \(expectedNames.subtracting(file.names))")
        }
        if family == .chatterboxTurbo { try loadTurboT3(try model.file("t3.safetensors")) }
        print("\(family.rawValue): converted in \(converted), opened in \(opened); \(compared) tensors equal the source (\(folded) weight-norm folds), dropped \(summary.manifest.dropped.count)")
        #expect(compared > 2000)
    }
}
