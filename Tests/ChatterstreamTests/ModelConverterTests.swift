import ChatterModels
import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import Chatterstream


/// A small upstream-like Turbo checkpoint directory with every kind of tensor the converter
/// treats specially, and the schema / published identities that describe it.
struct MiniTurboCheckpoint {
    let directory: URL
    let schema: CheckpointSchema
    let published: [PublishedFile]

    static let conds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("../../shared/assets/chatterbox-turbo/conds.pt").standardized

    init(in root: URL) throws {
        directory = root.appendingPathComponent("upstream")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        func values(_ count: Int, _ seed: Float) -> [Float] { (0..<count).map { sin(Float($0) * 0.37 + seed) } }
        let files: [String: [(String, Tensor)]] = [
            "ve.safetensors": [("lstm.weight_ih_l0", Tensor(shape: [8, 4], scalars: values(32, 1))),
                               ("proj.bias", Tensor(shape: [4], scalars: values(4, 2)))],
            "t3_turbo_v1.safetensors": [("tfmr.wte.weight", Tensor(shape: [6, 4], scalars: values(24, 3))),
                                        ("text_head.weight", Tensor(shape: [6, 4], scalars: values(24, 4))),
                                        ("tfmr.h.0.attn.c_attn.weight", Tensor(shape: [4, 12], scalars: values(48, 5))),
                                        ("tfmr.h.0.ln_1.weight", Tensor(shape: [4], scalars: values(4, 6)))],
            "s3gen_meanflow.safetensors": [
                ("mel2wav.conv_pre.parametrizations.weight.original0", Tensor(shape: [3, 1, 1], scalars: [0.5, 1.5, 2])),
                ("mel2wav.conv_pre.parametrizations.weight.original1", Tensor(shape: [3, 2, 5], scalars: values(30, 7))),
                ("mel2wav.conv_pre.bias", Tensor(shape: [3], scalars: values(3, 8))),
                ("mel2wav.ups.0.parametrizations.weight.original0", Tensor(shape: [2, 1, 1], scalars: [1, 3])),
                ("mel2wav.ups.0.parametrizations.weight.original1", Tensor(shape: [2, 3, 4], scalars: values(24, 9))),
                ("speaker_encoder.head.bn1.num_batches_tracked", Tensor(shape: [], dtype: .i64, values: [Int64(7)])),
                ("tokenizer.window", Tensor(shape: [4], scalars: [0, 0.5, 1, 0.5])),
                ("flow.input_embedding.weight", Tensor(shape: [5, 4], scalars: values(20, 10)))],
        ]
        var schemaFiles: [String: [String: CheckpointSchema.Entry]] = [:]
        for (file, tensors) in files {
            try SafetensorsWriter.write(tensors.map { (name: $0.0, tensor: $0.1) }, metadata: ["format": "pt"],
                                        to: directory.appendingPathComponent(file).path)
            schemaFiles[file] = Dictionary(uniqueKeysWithValues: tensors.map { ($0.0, CheckpointSchema.Entry(dtype: $0.1.dtype, shape: $0.1.shape)) })
        }
        try FileManager.default.copyItem(at: Self.conds, to: directory.appendingPathComponent("conds.pt"))
        for name in ["vocab.json", "merges.txt"] {
            try Data("{\"\(name)\": 1}\n".utf8).write(to: directory.appendingPathComponent(name))
        }
        schema = CheckpointSchema(files: schemaFiles)
        let folder = directory
        published = try (Array(files.keys) + ["conds.pt", "vocab.json", "merges.txt"]).sorted().map { name in
            let url = folder.appendingPathComponent(name)
            let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
            return PublishedFile(name: name, size: size, sha256: try SHA256.hex(ofFileAt: url))
        }
    }

    func options() -> ModelConverter.Options {
        var options = ModelConverter.Options()
        options.schema = schema
        options.publishedFiles = published
        return options
    }
}

@Suite struct ModelConverterTests {
    @Test func convertsFoldsDropsAndWritesAManifest() throws {
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        var options = checkpoint.options()
        options.dtypes = [.t3: .bf16]
        let output = temporary.path("converted")
        let summary = try ModelConverter().convert(from: checkpoint.directory, to: output, options: options)
        #expect(summary.family == .chatterboxTurbo)
        #expect(summary.warnings.isEmpty, "\(summary.warnings)")

        let model = try ConvertedModel(directory: output)
        #expect(model.family == .chatterboxTurbo)
        #expect(Set(model.manifest.dropped) == ["t3_turbo_v1.safetensors:tfmr.wte.weight", "t3_turbo_v1.safetensors:text_head.weight",
                                                "s3gen_meanflow.safetensors:tokenizer.window",
                                                "s3gen_meanflow.safetensors:speaker_encoder.head.bn1.num_batches_tracked"])
        let upstreamT3 = try SafetensorsFile(path: checkpoint.directory.appendingPathComponent("t3_turbo_v1.safetensors").path)
        let t3 = try model.file("t3.safetensors")
        #expect(Set(t3.names) == ["tfmr.h.0.attn.c_attn.weight", "tfmr.h.0.ln_1.weight"])
        // Matrices take the group dtype; vectors stay f32.
        #expect(try t3.tensor("tfmr.h.0.attn.c_attn.weight").dtype == .bf16)
        // GPT-2 Conv1D weights are stored transposed ([out, in]) and the file says so.
        #expect(try t3.tensor("tfmr.h.0.attn.c_attn.weight").scalars()
                == (try upstreamT3.tensor("tfmr.h.0.attn.c_attn.weight").transposed().copy().converted(to: .bf16).scalars()))
        #expect(try t3.tensor("tfmr.h.0.attn.c_attn.weight").shape == Array(try upstreamT3.tensor("tfmr.h.0.attn.c_attn.weight").shape.reversed()))
        #expect(t3.metadata[GPT2Conv1DLayout.metadataKey] == GPT2Conv1DLayout.transposedValue)
        #expect(try t3.tensor("tfmr.h.0.ln_1.weight").dtype == .f32)

        let upstreamS3 = try SafetensorsFile(path: checkpoint.directory.appendingPathComponent("s3gen_meanflow.safetensors").path)
        let s3 = try model.file("s3gen.safetensors")
        #expect(Set(s3.names) == ["mel2wav.conv_pre.weight", "mel2wav.conv_pre.bias", "mel2wav.ups.0.weight", "flow.input_embedding.weight"])
        for base in ["mel2wav.conv_pre", "mel2wav.ups.0"] {
            let expected = foldWeightNorm(magnitude: try upstreamS3.tensor(base + ".parametrizations.weight.original0"),
                                          direction: try upstreamS3.tensor(base + ".parametrizations.weight.original1"))
            #expect(try s3.tensor(base + ".weight").scalars() == expected.scalars(), "\(base)")
        }
        #expect(try s3.tensor("flow.input_embedding.weight").scalars() == (try upstreamS3.tensor("flow.input_embedding.weight").scalars()))

        // The built-in voice: every tensor, made contiguous, equal to what the torch reader sees.
        let conds = try model.file("conds.safetensors")
        let torchConds = try TorchCheckpoint(path: MiniTurboCheckpoint.conds.path)
        for (name, tensor) in torchConds.tensors() {
            let converted = try conds.tensor(name)
            #expect(converted.shape == tensor.shape && converted.isContiguous, "\(name)")
            #expect(tensor.dtype.isFloatingPoint ? converted.scalars() == tensor.scalars() : converted.integers() == tensor.integers(), "\(name)")
        }
        // Manifest hashes are the files' hashes; tokenizer files are copied verbatim.
        for file in model.manifest.files {
            #expect(try SHA256.hex(ofFileAt: output.appendingPathComponent(file.name)) == file.sha256, "\(file.name)")
        }
        #expect(FileManager.default.contentsEqual(atPath: output.appendingPathComponent("vocab.json").path,
                                                  andPath: checkpoint.directory.appendingPathComponent("vocab.json").path))
        #expect(model.manifest.sources.allSatisfy { $0.matchesPublished == true })
        // Nothing but the output is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.url.path).sorted() == ["converted", "upstream"])
    }

    /// `--dtype t3=q8_0` quantises T3's decode matrices whose rows are whole 32-value blocks; this
    /// checkpoint's qkv has 4 in-features, so it stays f32 (as do vectors), and the manifest says Q8_0.
    /// Other groups refuse q8_0 with a typed error, before anything is written.
    @Test func q8_0IsForT3DecodeMatricesOnly() throws {
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        var options = checkpoint.options()
        options.dtypes = [.t3: .q8_0]
        let output = temporary.path("converted")
        _ = try ModelConverter().convert(from: checkpoint.directory, to: output, options: options)
        let model = try ConvertedModel(directory: output)
        let t3 = try model.file("t3.safetensors")
        #expect(try t3.tensor("tfmr.h.0.attn.c_attn.weight").dtype == .f32)
        #expect(try t3.tensor("tfmr.h.0.ln_1.weight").dtype == .f32)
        #expect(model.manifest.files.first { $0.name == "t3.safetensors" }?.dtype == "Q8_0")
        #expect(T3WeightPrecision.storedDType("tfmr.h.3.mlp.c_fc.weight", shape: [4096, 1024], target: .q8_0) == .q8_0)
        #expect(T3WeightPrecision.storedDType("tfmr.layers.0.mlp.down_proj.weight", shape: [1024, 4096], target: .q8_0) == .q8_0)
        #expect(T3WeightPrecision.storedDType("speech_head.weight", shape: [6563, 1024], target: .q8_0) == .q8_0)
        #expect(T3WeightPrecision.storedDType("speech_head.weight", shape: [6563, 1000], target: .q8_0) == .f32)
        #expect(T3WeightPrecision.storedDType("text_emb.weight", shape: [50276, 1024], target: .q8_0) == .f32)
        #expect(T3WeightPrecision.storedDType("text_emb.weight", shape: [50276, 1024], target: .f16) == .f16)
        #expect(T3WeightPrecision.storedDType("tfmr.h.0.ln_1.weight", shape: [1024], target: .q8_0) == .f32)

        options.dtypes = [.s3gen: .q8_0]
        options.force = true
        #expect(throws: ConversionError.unsupportedDType(group: "s3gen", dtype: "Q8_0", supported: ["F32", "BF16", "F16"])) {
            _ = try ModelConverter().convert(from: checkpoint.directory, to: output, options: options)
        }
        #expect(try ConvertedModel(directory: output).manifest.files.first { $0.name == "t3.safetensors" }?.dtype == "Q8_0", "the old output is untouched")
    }

    @Test func refusesToOverwriteWithoutForce() throws {
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        let output = temporary.path("converted")
        _ = try ModelConverter().convert(from: checkpoint.directory, to: output, options: checkpoint.options())
        #expect(throws: ConversionError.outputExists(output.path)) {
            _ = try ModelConverter().convert(from: checkpoint.directory, to: output, options: checkpoint.options())
        }
        var options = checkpoint.options()
        options.force = true
        options.dtypes = [.s3gen: .f16]
        _ = try ModelConverter().convert(from: checkpoint.directory, to: output, options: options)
        #expect(try ConvertedModel(directory: output).file("s3gen.safetensors").tensor("flow.input_embedding.weight").dtype == .f16)
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.url.path).sorted() == ["converted", "upstream"])
    }

    func expectFailure(_ expected: ConversionError, mutate: (MiniTurboCheckpoint, inout ModelConverter.Options) throws -> Void) throws {
        try expectFailure({ _ in expected }, mutate: mutate)
    }

    /// `expected` receives the upstream directory, for errors that name it.
    func expectFailure(_ expected: (URL) -> ConversionError, mutate: (MiniTurboCheckpoint, inout ModelConverter.Options) throws -> Void) throws {
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        var options = checkpoint.options()
        try mutate(checkpoint, &options)
        do {
            _ = try ModelConverter().convert(from: checkpoint.directory, to: temporary.path("converted"), options: options)
            Issue.record("expected \(expected(checkpoint.directory))")
        } catch let error as ConversionError {
            print("refused as expected: \(error)")
            #expect(error == expected(checkpoint.directory))
        }
        // No partial output is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.url.path) == ["upstream"])
    }

    @Test func refusesMissingTensorsWrongShapesAndUnpublishedFilesWhenStrict() throws {
        try expectFailure(.missingTensor(file: "t3_turbo_v1.safetensors", tensor: "tfmr.h.0.attn.c_proj.weight")) { checkpoint, options in
            var files = checkpoint.schema.files
            files["t3_turbo_v1.safetensors"]!["tfmr.h.0.attn.c_proj.weight"] = .init(dtype: .f32, shape: [4, 4])
            options.schema = CheckpointSchema(files: files)
        }
        try expectFailure(.wrongShape(file: "ve.safetensors", tensor: "proj.bias", expected: [5], actual: [4])) { checkpoint, options in
            var files = checkpoint.schema.files
            files["ve.safetensors"]!["proj.bias"] = .init(dtype: .f32, shape: [5])
            options.schema = CheckpointSchema(files: files)
        }
        try expectFailure(.unexpectedTensor(file: "ve.safetensors", tensor: "proj.bias")) { checkpoint, options in
            var files = checkpoint.schema.files
            files["ve.safetensors"]!["proj.bias"] = nil
            options.schema = CheckpointSchema(files: files)
            options.strict = true
        }
        try expectFailure({ .missingFile(directory: $0.path, file: "merges.txt") }) { checkpoint, _ in
            try FileManager.default.removeItem(at: checkpoint.directory.appendingPathComponent("merges.txt"))
        }
        let temporary = try TemporaryDirectory()
        let checkpoint = try MiniTurboCheckpoint(in: temporary.url)
        var options = checkpoint.options()
        options.publishedFiles = checkpoint.published.map { file in
            file.name == "vocab.json" ? PublishedFile(name: file.name, size: file.identities[0].size, sha256: String(repeating: "0", count: 64)) : file
        }
        // Without --strict a hash mismatch warns; with it, conversion is refused.
        let summary = try ModelConverter().convert(from: checkpoint.directory, to: temporary.path("lenient"), options: options)
        #expect(summary.warnings.count == 1 && summary.warnings[0].contains("vocab.json is not the published file"))
        options.strict = true
        #expect(throws: ConversionError.self) {
            _ = try ModelConverter().convert(from: checkpoint.directory, to: temporary.path("strict"), options: options)
        }
        #expect(!FileManager.default.fileExists(atPath: temporary.path("strict").path))
    }

    @Test func detectsFamiliesAndExplainsAnUnknownDirectory() throws {
        let temporary = try TemporaryDirectory()
        #expect(throws: ConversionError.unknownCheckpointDirectory(temporary.url.path, found: [])) {
            _ = try ModelConverter.detectFamily(in: temporary.url)
        }
        for (file, family) in [("t3_cfg.safetensors", ModelFamily.chatterbox), ("t3_turbo_v1.safetensors", .chatterboxTurbo),
                               ("t3_mtl23ls_v2.safetensors", .chatterboxMultilingualV2), ("t3_mtl23ls_v3.safetensors", .chatterboxMultilingual),
                               ("t3_nano_v1.safetensors", .chatterboxNano)] {
            let directory = temporary.path(family.rawValue)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: directory.appendingPathComponent(file).path, contents: Data())
            #expect(try ModelConverter.detectFamily(in: directory) == family)
        }
    }

    @Test func publishedSchemasHaveTheUpstreamTensorCounts() {
        // Counts from ../shared/reference (t3.md §2, s3gen.md §2, frontends.md §2.5).
        let original = CheckpointSchema.published(.chatterbox).files
        #expect(original["t3_cfg.safetensors"]?.count == 292)
        #expect(original["s3gen.safetensors"]?.count == 2489)
        #expect(original["ve.safetensors"]?.count == 16)
        let turbo = CheckpointSchema.published(.chatterboxTurbo).files
        #expect(turbo["t3_turbo_v1.safetensors"]?.count == 299)
        #expect(turbo["s3gen_meanflow.safetensors"]?.count == 2491)
        #expect(turbo["t3_turbo_v1.safetensors"]?["tfmr.h.0.attn.c_attn.weight"]?.shape == [1024, 3072])
        let multilingual = CheckpointSchema.published(.chatterboxMultilingualV2).files
        #expect(multilingual["t3_mtl23ls_v2.safetensors"]?["text_emb.weight"]?.shape == [2454, 1024])
        #expect(multilingual["s3gen.pt"]?.count == 2490)
        // V3: V2's T3 under its own name, the rest shared.
        let v3 = CheckpointSchema.published(.chatterboxMultilingual).files
        #expect(v3["t3_mtl23ls_v3.safetensors"] == multilingual["t3_mtl23ls_v2.safetensors"])
        #expect(v3["t3_mtl23ls_v2.safetensors"] == nil && v3["s3gen.pt"] == multilingual["s3gen.pt"])
        // Nano: Turbo's files, its T3 at GPT-2 small's sizes (12 blocks of 768; upstream 5de7a54).
        let nano = CheckpointSchema.published(.chatterboxNano).files
        #expect(nano["t3_nano_v1.safetensors"]?.count == 299 - 12 * 12)  // Turbo's, 12 fewer blocks of 12 tensors
        #expect(nano["t3_nano_v1.safetensors"]?["tfmr.h.0.attn.c_attn.weight"]?.shape == [768, 2304])
        #expect(nano["t3_nano_v1.safetensors"]?["tfmr.h.11.mlp.c_fc.weight"]?.shape == [768, 3072])
        #expect(nano["t3_nano_v1.safetensors"]?["tfmr.h.12.ln_1.weight"] == nil)
        #expect(nano["s3gen_meanflow.safetensors"] == turbo["s3gen_meanflow.safetensors"])
        #expect(nano["ve.safetensors"] == turbo["ve.safetensors"])
    }
}
