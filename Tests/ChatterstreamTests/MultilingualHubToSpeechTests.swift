import ChatterModels
import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import Chatterstream

/// Chatterbox Multilingual V3's first use on loopback with the full-size random checkpoint of
/// `tools/checkpoints/make_random_checkpoint.py --family chatterbox-multilingual` (gigabytes, so
/// not in CI; the files are memory-mapped, not read):
///
///     tools/fixtures/.venv/bin/python tools/checkpoints/make_random_checkpoint.py \
///         --family chatterbox-multilingual --out generated/chatterbox-multilingual
///     CHATTERSTREAM_GENERATED_CHECKPOINTS=generated swift test --filter MultilingualHubToSpeech
///
/// The store fetches the family's real file list from `ResembleAI/chatterbox` (the pinned files'
/// identities replaced by the random files': they are not the published bytes), accepts the
/// unpinned V3 T3, goes on without the optional `Cangjie5_TC.json` (HTTP 404), the real converter
/// turns the torch pickles into our format, and the engine speaks French: whole tokens of audio
/// (V3's trim cuts at a token boundary), as long streamed as in one shot.
@Suite(.serialized) struct MultilingualHubToSpeechTests {
    static let source = ProcessInfo.processInfo.environment["CHATTERSTREAM_GENERATED_CHECKPOINTS"]
        .map { URL(fileURLWithPath: $0).appendingPathComponent("chatterbox-multilingual") }
    static var available: Bool {
        source.map { FileManager.default.fileExists(atPath: $0.appendingPathComponent(PublishedFile.t3MultilingualV3.name).path) } ?? false
    }

    @Test(.enabled(if: available, "set CHATTERSTREAM_GENERATED_CHECKPOINTS"))
    func multilingualIsDownloadedConvertedCachedAndSpoken() async throws {
        let family = ModelFamily.chatterboxMultilingual
        let server = try LoopbackHubServer()
        defer { server.stop() }
        let home = try TemporaryDirectory()
        var published: [PublishedFile] = []
        for file in family.files {
            let url = Self.source!.appendingPathComponent(file.name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                #expect(file.isOptional, "\(file.name) is missing from the random checkpoint")
                published.append(file)  // not served: HTTP 404
                continue
            }
            let data = try Data(contentsOf: url, options: .alwaysMapped)
            server.serve(repository: family.repository, file: file.name, data: data)
            published.append(file.isPinned ? PublishedFile(name: file.name, size: data.count, sha256: try SHA256.hex(ofFileAt: url)) : file)
        }
        let files = published
        var store = ModelStore(environment: ["HF_HOME": home.url.path, "HF_ENDPOINT": server.endpoint],
                               publishedFiles: { _ in files })
        // load() also fetches spacy-pkuseg's model for this family: not served here (HTTP 404), so it
        // warns and goes on, as it does wherever GitHub is out of reach; the test stays off the network.
        store.pkusegSource.modelURL = URL(string: "\(server.endpoint)/github/resolve/main/spacy_ontonotes.zip")!
        let events = Events()
        let started = ContinuousClock.now
        let directory = try await store.ensure(family, progress: { events.append($0) })
        #expect(events.all.contains(.optionalFileAbsent(file: PublishedFile.cangjieTable.name)))
        #expect(events.all.contains { if case .fileAcceptedUnpinned(PublishedFile.t3MultilingualV3.name, _, _) = $0 { true } else { false } })
        let model = try ConvertedModel(directory: directory)
        #expect(model.family == family)
        let fetched = ContinuousClock.now - started

        var options = SynthesisOptions()
        options.language = "fr"
        options.seed = 11
        options.maxTokens = 8  // random weights rarely stop: bound the run
        let tts = try await StreamingTTS(model: .family(family), options: options, watermark: false, store: store).load()
        var oneShot = options
        oneShot.oneShot = true
        var streamed = options
        streamed.firstChunkTokens = 3
        streamed.chunkTokens = 3
        var lengths: [Int] = []
        for run in [oneShot, streamed] {
            var samples = 0, chunks = 0
            for try await chunk in tts.synthesize("Bonjour tout le monde.", options: run) {
                samples += chunk.sampleCount
                chunks += 1
            }
            lengths.append(samples)
            print("chatterbox-multilingual (V3) on loopback, \(run.oneShot ? "one shot" : "streamed"): \(chunks) chunks, \(samples) samples")
        }
        // Whole tokens of 960 samples (the trim cuts at a token boundary: `max(1, n − 1)` tokens of
        // the at most 8 drawn; the random model's ids ≥ 6561 are dropped before S3Gen), the same
        // streamed as in one shot.
        #expect(lengths[0] > 0 && lengths[0] % 960 == 0 && lengths[0] <= 7 * 960, "\(lengths)")
        #expect(lengths[0] == lengths[1])
        let info = try await tts.info()
        print("multilingual hub → convert → cache in \(fetched); \(info)")

        var english = options
        english.language = "xx"
        await #expect(throws: StreamingTTSError.self) {
            for try await _ in tts.synthesize("Hello.", options: english) {}
        }
    }
}

private final class Events: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ModelStoreEvent] = []
    func append(_ event: ModelStoreEvent) { lock.withLock { events.append(event) } }
    var all: [ModelStoreEvent] { lock.withLock { events } }
}
