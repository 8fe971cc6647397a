import ChatterModels
import ChatterTensor
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// Chatterbox-Nano's first use on loopback, with the family's real file list: the store fetches
/// every file `ResembleAI/chatterbox-nano` publishes under its upstream name (none of them pinned:
/// their identities were not known when Nano was added), accepts and records each, the real
/// converter turns the upstream layout (GPT-2 `Conv1D` T3, the torch-pickled built-in voice) into
/// ours, and the engine loads the cache and speaks; a second engine works offline from the cache.
///
/// The weights are reduced (the tiny GPT-2 T3 of `t3/turbo_tiny` with Nano's real vocabularies,
/// position table and speaker width, so Turbo's real `conds.pt` drives it; the reduced meanflow
/// flow and HiFT), so the conversion validates against their own schema and the manifest records
/// their shapes.
@Suite struct NanoHubToSpeechTests {
    static let assets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Assets/tokenizers/chatterbox-turbo")
    static let turboConds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../../shared/assets/chatterbox-turbo/conds.pt").standardized
    static let positions = 1024

    /// The reduced T3 under Nano's upstream keys: `turbo_tiny`'s blocks with full-size tables.
    static func t3Tensors() throws -> (tensors: [String: Tensor], config: T3Config) {
        let fixture = TinyTurboModels.t3Fixture
        let tiny = fixture.cases.first { $0.name == "tiny" }!
        let hidden = tiny.int("hidden"), speech = T3Config.nano.speechVocabularySize
        var tensors: [String: Tensor] = [:]
        for entry in fixture.file.entries where entry.name.hasPrefix("tiny.w.") {
            tensors[String(entry.name.dropFirst(7))] = try fixture.file.tensor(entry.name)
        }
        tensors["text_emb.weight"] = TinySpeechModels.random([T3Config.nano.textVocabularySize, hidden], seed: 3, scale: 1)
        tensors["tfmr.wpe.weight"] = TinySpeechModels.random([positions, hidden], seed: 4, scale: 0.1)
        tensors["speech_emb.weight"] = TinySpeechModels.random([speech, hidden], seed: 5, scale: 1)
        tensors["speech_head.weight"] = TinySpeechModels.random([speech, hidden], seed: 6, scale: 0.1)
        // EOS made unlikely, so the random model speaks long enough to make several chunks.
        tensors["speech_head.bias"] = Tensor(shape: [speech], scalars: (0..<speech).map { $0 == T3Config.nano.stopSpeechToken ? -12 : 0 })
        tensors["cond_enc.spkr_enc.weight"] = TinySpeechModels.random([hidden, 256], seed: 7, scale: 0.1)
        tensors["cond_enc.spkr_enc.bias"] = TinySpeechModels.random([hidden], seed: 8, scale: 0.1)
        var config = T3Config.nano
        config.backbone = .gpt2(maxPositions: positions)
        config.hiddenSize = hidden
        config.layers = tiny.int("layers")
        config.heads = tiny.int("heads")
        config.headDim = tiny.int("head_dim")
        config.intermediateSize = tiny.int("intermediate")
        return (tensors, config)
    }

    /// The reduced meanflow S3Gen under upstream keys: `flow.*` of `s3gen/flow_meanflow` (its token
    /// table widened to S3Gen's 6,561 ids), the rest (`mel2wav.*`) of `s3gen/e2e`.
    static func s3genTensors() throws -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        let rest = TinySpeechModels.s3genFixture.file, flow = TinyTurboModels.flowFixture.file
        for entry in rest.entries where entry.name.hasPrefix("model.") && !entry.name.hasPrefix("model.flow.") {
            tensors[String(entry.name.dropFirst(6))] = try rest.tensor(entry.name)
        }
        for entry in flow.entries where entry.name.hasPrefix("model.flow.") {
            tensors[String(entry.name.dropFirst(6))] = try flow.tensor(entry.name)
        }
        let width = try flow.tensor("model.flow.input_embedding.weight").shape[1]
        tensors["flow.input_embedding.weight"] = TinySpeechModels.random([6_561, width], seed: 9, scale: 1)
        return tensors
    }

    @Test func nanoIsDownloadedAcceptedConvertedCachedAndSpoken() async throws {
        let family = ModelFamily.chatterboxNano
        #expect(family.files.allSatisfy { !$0.isPinned }, "no Nano identity is known to this build")
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory(), staging = try TemporaryDirectory()

        // The upstream files, under the names the family lists.
        let (t3, t3Config) = try Self.t3Tensors()
        let weightFiles: [String: [String: Tensor]] = [
            PublishedFile.veNano.name: ["proj.weight": TinySpeechModels.random([4, 8], seed: 10), "proj.bias": TinySpeechModels.random([4], seed: 11)],
            PublishedFile.t3Nano.name: t3,
            PublishedFile.s3genMeanflowNano.name: try Self.s3genTensors(),
        ]
        var schema: [String: [String: CheckpointSchema.Entry]] = [:]
        for (name, tensors) in weightFiles {
            try SafetensorsWriter.write(tensors.keys.sorted().map { (name: $0, tensor: tensors[$0]!) }, metadata: ["format": "pt"],
                                        to: staging.url.appendingPathComponent(name).path)
            schema[name] = tensors.mapValues { CheckpointSchema.Entry(dtype: $0.dtype, shape: $0.shape) }
        }
        try FileManager.default.copyItem(at: Self.turboConds, to: staging.url.appendingPathComponent(PublishedFile.condsNano.name))
        for file in [PublishedFile.vocabNano, .mergesNano, .addedTokensNano, .specialTokensMapNano, .tokenizerConfigNano] {
            try FileManager.default.copyItem(at: Self.assets.appendingPathComponent(file.name),
                                             to: staging.url.appendingPathComponent(file.name))
        }
        var served: [String: Data] = [:]
        for file in family.files {
            served[file.name] = try Data(contentsOf: staging.url.appendingPathComponent(file.name))
            server.serve(repository: family.repository, file: file.name, data: served[file.name]!)
        }
        #expect(family.repository == "ResembleAI/chatterbox-nano")

        // The real converter (unpinned files are hashed and recorded), with the reduced schema; the
        // reduced shapes go into the manifest, as for every reduced model.
        let checkpointSchema = CheckpointSchema(files: schema)
        let warnings = WarningLog()
        let conversion = ModelStoreConversion(name: "chatterstream-format-reduced-nano") { upstream, output, _ in
            var options = ModelConverter.Options()
            options.schema = checkpointSchema
            options.force = true
            options.progress = { line in if line.hasPrefix("warning: ") { warnings.append(line) } }
            _ = try ModelConverter().convert(from: upstream, to: output, options: options)
            let url = output.appendingPathComponent(ConvertedFiles.manifest)
            var manifest = try JSONDecoder().decode(ModelManifest.self, from: Data(contentsOf: url))
            manifest.hyperparameters = ModelHyperparameters(t3: t3Config, s3genDecoderHeads: TinyTurboModels.flowFixture.case("model")!.int("dec_heads"),
                                                            hift: TinySpeechModels.hift)
            try JSONEncoder().encode(manifest).write(to: url)
        }
        let events = EventLog()
        func store(offline: Bool) -> ModelStore {
            var environment = ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint]
            if offline { environment["HF_HUB_OFFLINE"] = "1" }
            return ModelStore(environment: environment, converter: conversion)  // the family's own file list
        }

        let directory = try await store(offline: false).ensure(family, progress: { events.append($0) })
        for (name, data) in served {
            #expect(server.requests.contains { $0.path.hasSuffix("/ResembleAI/chatterbox-nano/resolve/main/\(name)") }, "\(name) was fetched")
            // Accepted unverified, reported with its size and sha256, and recorded.
            #expect(events.all.contains(.fileAcceptedUnpinned(file: name, size: Int64(data.count), sha256: SHA256.hex(of: data))))
        }
        #expect(!events.all.contains { if case .fileVerified = $0 { true } else { false } }, "nothing is claimed verified")
        let record = try JSONDecoder().decode(CacheRecord.self, from: Data(contentsOf: directory.appendingPathComponent(CacheRecord.fileName)))
        #expect(record.upstream.count == served.count && record.upstream.allSatisfy { $0.unpinned == true })
        #expect(Set(record.upstream.map(\.sha256)) == Set(served.values.map { SHA256.hex(of: $0) }))
        let model = try ConvertedModel(directory: directory)
        #expect(model.family == family)
        #expect(model.manifest.sources.count == served.count && model.manifest.sources.allSatisfy { $0.matchesPublished == nil })
        #expect(warnings.all.count == served.count, "one 'no published size and sha256' warning per file: \(warnings.all)")

        let tts = try await StreamingTTS(model: .family(family), options: TinyTurboModels.config, watermark: false,
                                         store: store(offline: false)).load()
        var samples = 0, chunks = 0
        for try await chunk in tts.synthesize("Hello from Nano [chuckle] on the loopback hub.") {
            samples += chunk.sampleCount
            chunks += 1
        }
        #expect(samples > 0 && chunks > 1)
        let info = try await tts.info()
        #expect(info.family == .chatterboxNano)
        print("nano hub → accept → convert → cache → speech: \(served.count) files, \(chunks) chunks, \(samples) samples; \(info)")

        // Offline, from the cache: no request reaches the server.
        let before = server.requestCount
        let cached = try await StreamingTTS(model: .family(family), options: TinyTurboModels.config, watermark: false,
                                            store: store(offline: true)).load()
        #expect(try await cached.synthesize("Hello again.").reduce(0) { $0 + $1.sampleCount } > 0)
        #expect(server.requestCount == before)
    }

    @Test func unpinnedFileOverItsLimitIsRefusedAndDeleted() async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        let family = ModelFamily.chatterboxNano
        let file = PublishedFile.unpinned("conds.pt", sizeLimit: 1_000)
        server.serve(repository: family.repository, file: file.name, data: Data(repeating: 7, count: 1_001))
        let store = ModelStore(environment: ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint],
                               converter: .keepUpstreamFiles, publishedFiles: { _ in [file] })
        let error = await #expect(throws: ModelStoreError.self) { try await store.ensure(family) }
        guard case .unpinnedTooLarge(file: "conds.pt", limit: 1_000, actual: _) = error else {
            Issue.record("expected unpinnedTooLarge, got \(String(describing: error))")
            return
        }
        let downloads = store.downloadDirectory(for: family)
        #expect(!FileManager.default.fileExists(atPath: downloads.appendingPathComponent("conds.pt").path))
        #expect(!FileManager.default.fileExists(atPath: downloads.appendingPathComponent("conds.pt.incomplete").path))
        #expect(store.cachedModel(family) == nil)
    }
}

/// Thread-safe logs for the store's callbacks.
private final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ModelStoreEvent] = []
    func append(_ event: ModelStoreEvent) { lock.withLock { events.append(event) } }
    var all: [ModelStoreEvent] { lock.withLock { events } }
}

private final class WarningLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}
