import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import Chatterstream

/// The whole first-use path: download from a (loopback) hub, verify, convert to our format, cache,
/// and open the cached model by mmap.
@Suite struct ModelStoreConversionTests {
    @Test func downloadsConvertsCachesAndOpens() async throws {
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        let server = try LoopbackHubServer()
        defer { server.stop() }
        for file in checkpoint.published {
            server.serve(repository: ModelFamily.chatterboxTurbo.repository, file: file.name,
                         data: try Data(contentsOf: checkpoint.directory.appendingPathComponent(file.name)))
        }
        // The real conversion, with the mini checkpoint's schema in place of the published one.
        let miniOptions = checkpoint.options()
        let conversion = ModelStoreConversion(name: "chatterstream-format-test") { upstream, output, _ in
            var options = miniOptions
            options.verifySourceHashes = false
            options.force = true
            _ = try ModelConverter().convert(from: upstream, to: output, options: options)
        }
        let published = checkpoint.published
        let store = ModelStore(environment: ["HF_HOME": temporary.path("hf-home").path, "HF_ENDPOINT": server.endpoint],
                               converter: conversion, publishedFiles: { _ in published })
        let directory = try await store.ensure(.chatterboxTurbo)
        let model = try ConvertedModel(directory: directory)
        #expect(model.family == .chatterboxTurbo)
        #expect(try model.file("t3.safetensors").tensor("tfmr.h.0.attn.c_attn.weight").storage.kind == .mapped)
        #expect(try model.file("conds.safetensors").tensor("gen.prompt_feat").shape == [1, 500, 80])
        #expect(FileManager.default.fileExists(atPath: model.path(of: "vocab.json").path))
        let requests = server.requestCount
        #expect(try await store.ensure(.chatterboxTurbo) == directory)
        #expect(server.requestCount == requests, "second use is a cache hit")
    }
}
