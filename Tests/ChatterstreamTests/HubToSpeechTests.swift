import ChatterModels
import ChatterTensor
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// The README's main job end to end, on loopback: `StreamingTTS(model: .family(.chatterbox))` finds no
/// cache, downloads the family's files from a hub (a real HTTP server on 127.0.0.1 serving small
/// upstream-format checkpoint files built from the tiny fixture models), verifies them, converts
/// and caches them, loads them and speaks; a second engine works offline from the cache.
@Suite struct HubToSpeechTests {
    /// Upstream-named files of the tiny model: T3 and S3Gen weights under upstream keys, the real
    /// English tokenizer, the built-in voice.
    static func upstreamFiles() throws -> [String: Data] {
        let dir = try TemporaryDirectory()
        let t3Keys = TinySpeechModels.t3Fixture.file.entries.map(\.name).filter { $0.hasPrefix("tiny.w.") }.map { String($0.dropFirst(7)) }
        let s3genKeys = TinySpeechModels.s3genFixture.file.entries.map(\.name).filter { $0.hasPrefix("model.") }.map { String($0.dropFirst(6)) }
        try TinySpeechModels.write(TinySpeechModels.t3Weights, keys: t3Keys, to: dir.url.appendingPathComponent("t3_cfg.safetensors"))
        try TinySpeechModels.write(TinySpeechModels.s3genWeights, keys: s3genKeys, to: dir.url.appendingPathComponent("s3gen.safetensors"))
        let voice = try TinySpeechModels.voiceTensors()
        try SafetensorsWriter.write(voice.keys.sorted().map { (name: $0, tensor: voice[$0]!) },
                                    to: dir.url.appendingPathComponent("conds.safetensors").path)
        var files: [String: Data] = ["tokenizer.json": try Data(contentsOf: TinySpeechModels.tokenizerURL)]
        for name in ["t3_cfg.safetensors", "s3gen.safetensors", "conds.safetensors"] {
            files[name] = try Data(contentsOf: dir.url.appendingPathComponent(name))
        }
        return files
    }

    /// The store's conversion hook for the reduced model: the published converter checks the
    /// published (full-size) schema, so this one lays out the converted directory itself, recording
    /// the reduced shapes in the manifest.
    static let reducedConversion = ModelStoreConversion(name: "reduced-test-model") { upstream, output, family in
        let renames = ["t3_cfg.safetensors": "t3.safetensors", "s3gen.safetensors": "s3gen.safetensors",
                       "conds.safetensors": "conds.safetensors", "tokenizer.json": "tokenizer.json"]
        var files: [ModelManifest.File] = []
        for (source, target) in renames.sorted(by: { $0.key < $1.key }) {
            let data = try Data(contentsOf: upstream.appendingPathComponent(source))
            try data.write(to: output.appendingPathComponent(target))
            files.append(.init(name: target, bytes: data.count, sha256: SHA256.hex(of: data),
                               group: String(target.prefix { $0 != "." }), dtype: nil, tensors: nil))
        }
        let manifest = ModelManifest(format: "chatterstream", formatVersion: ModelManifest.currentFormatVersion, family: family,
                                     files: files, sources: [], dropped: [], createdBy: "HubToSpeechTests",
                                     hyperparameters: ModelHyperparameters(t3: TinySpeechModels.t3Config,
                                                                           s3genDecoderHeads: TinySpeechModels.decoderHeads,
                                                                           hift: TinySpeechModels.hift))
        try JSONEncoder().encode(manifest).write(to: output.appendingPathComponent("manifest.json"))
    }

    @Test func familyIsDownloadedConvertedCachedAndSpoken() async throws {
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        let files = try Self.upstreamFiles()
        let family = ModelFamily.chatterbox
        var published: [PublishedFile] = []
        for (name, data) in files.sorted(by: { $0.key < $1.key }) {
            server.serve(repository: family.repository, file: name, data: data)
            published.append(PublishedFile(name: name, identities: [FileIdentity(size: data.count, sha256: SHA256.hex(of: data))]))
        }
        let served = published
        func store(offline: Bool) -> ModelStore {
            var environment = ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint]
            if offline { environment["HF_HUB_OFFLINE"] = "1" }
            return ModelStore(environment: environment, converter: Self.reducedConversion, publishedFiles: { _ in served })
        }

        let tts = try await StreamingTTS(model: .family(family), options: TinySpeechModels.config, watermark: false,
                                         store: store(offline: false)).load()
        for name in files.keys {
            #expect(server.requests.contains { $0.path.hasSuffix("/resolve/main/\(name)") }, "\(name) was fetched from the hub")
        }
        var samples = 0, chunks = 0
        for try await chunk in tts.synthesize("Hello from the loopback hub.") {
            samples += chunk.sampleCount
            chunks += 1
        }
        #expect(samples > 0 && chunks > 1)
        let info = try await tts.info()
        #expect(info.family == .chatterbox && info.device == .cpu)
        // The default S3Gen arithmetic: bf16 where the CPU has avx512_bf16, f32 elsewhere.
        #expect(info.s3genPrecision == S3GenPrecision.auto.resolved && info.s3genPrecision != .auto)
        print("hub → cache → speech: \(files.count) files served on \(server.endpoint), \(chunks) chunks, \(samples) samples; \(info)")

        // Offline, from the cache: no request reaches the server.
        let before = server.requests.count
        let cached = try await StreamingTTS(model: .family(family), options: TinySpeechModels.config, watermark: false,
                                            s3genPrecision: .f32, store: store(offline: true)).load()
        #expect(try await cached.synthesize("Hello again.").reduce(0) { $0 + $1.sampleCount } > 0)
        #expect(try await cached.info().s3genPrecision == .f32)
        #expect(server.requests.count == before)
    }
}
