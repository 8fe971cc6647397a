import ChatterModels
import ChatterTensor
import Foundation

/// Converts an upstream checkpoint directory (as published on the Hugging Face hub) into our format
/// (weights-format.md): validated against the published schema, weight-norm folded, unused tensors
/// dropped, the built-in voice converted, tokenizer files copied, a manifest with hashes written —
/// all into a temporary directory that is renamed into place only when complete.
public struct ModelConverter: Sendable {
    public struct Options: Sendable {
        /// Compute dtype of each group's matrices (rank ≥ 2); vectors and scalars stay f32. f32, bf16
        /// and f16 for every group; q8_0 for T3 only (its decode matrices, see `T3WeightPrecision`).
        public var dtypes: [WeightGroup: DType] = [:]
        /// Refuse files that differ from the published ones (size, hash, unexpected tensors).
        public var strict = false
        /// Replace an existing output directory.
        public var force = false
        /// Hash the source files against the published sha256 (slow for multi-GB files; size is always checked).
        public var verifySourceHashes = true
        /// The family to convert as; nil: detected from the T3 file (`detectFamily`). Needed for a
        /// directory holding several families' T3 files (multilingual V2 beside V3 converts as V3).
        public var family: ModelFamily?
        /// Overrides for tests: the published file list and schema.
        public var publishedFiles: [PublishedFile]?
        public var schema: CheckpointSchema?
        /// Called with human-readable progress lines.
        public var progress: (@Sendable (String) -> Void)?
        /// Hex sha256 of a file; the second argument receives the bytes hashed so far.
        public var hashFile: @Sendable (URL, ((Int64) -> Void)?) throws -> String

        public init(hashFile: @escaping @Sendable (URL, ((Int64) -> Void)?) throws -> String = { try SHA256.hex(ofFileAt: $0, progress: $1) }) {
            self.hashFile = hashFile
        }

        /// Hashes `url`, reporting every 10 % of a large file through `progress`.
        func hash(_ url: URL, size: Int, label: String) throws -> String {
            guard size >= 64 << 20, let progress else { return try hashFile(url, nil) }
            var reported = 0
            return try hashFile(url) { done in
                let tenth = Int(done * 10 / Int64(max(size, 1)))
                if tenth > reported && tenth < 10 {
                    reported = tenth
                    progress("\(label) \(tenth * 10) %")
                }
            }
        }

        public func dtype(_ group: WeightGroup) -> DType { dtypes[group] ?? .f32 }
    }

    public struct Summary: Sendable {
        public let family: ModelFamily
        public let output: URL
        public let manifest: ModelManifest
        public let warnings: [String]
    }

    static let unusedTensors: Set<String> = [
        "tfmr.embed_tokens.weight",  // Llama: inputs are passed as embeddings
        "tfmr.wte.weight",  // GPT-2: deleted by upstream right after loading
        "text_head.weight",  // training only
        "tokenizer.window",  // Hann(400), recomputed; absent from the original s3gen.safetensors
    ]

    public init() {}

    /// The family of an upstream checkpoint directory, from the T3 file it holds.
    public static func detectFamily(in directory: URL) throws -> ModelFamily {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        // A directory holding several families' T3 files is named by the last one registered.
        for family in ModelFamily.allCases.reversed() {
            if let t3 = plans(family).first(where: { $0.group == .t3 }), names.contains(t3.source) { return family }
        }
        throw ConversionError.unknownCheckpointDirectory(directory.path, found: names.sorted())
    }

    /// Which upstream file becomes which of ours.
    static func plans(_ family: ModelFamily) -> [ConversionStep] { family.variant.conversion }

    public func convert(from source: URL, to output: URL, options: Options) throws -> Summary {
        let family = try options.family ?? Self.detectFamily(in: source)
        let fileManager = FileManager.default
        let say = options.progress ?? { _ in }
        var warnings: [String] = []
        func warn(_ message: String) { warnings.append(message); say("warning: \(message)") }

        for (group, dtype) in options.dtypes.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where !(group == .t3 ? T3WeightPrecision.supported : [.f32, .bf16, .f16]).contains(dtype) {
            throw ConversionError.unsupportedDType(group: group.rawValue, dtype: dtype.rawValue,
                                                   supported: (group == .t3 ? T3WeightPrecision.supported : [.f32, .bf16, .f16]).map(\.rawValue))
        }
        if fileManager.fileExists(atPath: output.path) && !options.force {
            throw ConversionError.outputExists(output.path)
        }
        say("\(family.rawValue) checkpoint in \(source.path)")

        // 1. Every published file is present; sizes (and hashes) match a published revision.
        var sources: [ModelManifest.Source] = []
        for published in options.publishedFiles ?? family.files {
            let url = source.appendingPathComponent(published.name)
            guard let size = ModelStore.fileSize(url).map(Int.init) else {
                if published.isOptional {
                    warn("\(published.name) is absent; the model works without it")
                    continue
                }
                throw ConversionError.missingFile(directory: source.path, file: published.name)
            }
            var hash: String?
            guard published.isPinned else {
                // Nothing to compare with: accept it within its limit, and record what it is.
                guard published.admits(size: size) else {
                    throw ConversionError.notPublished(file: published.name, detail: "has \(size) bytes, more than the"
                        + " \(published.sizeLimit) accepted for a file whose published identity this build does not know")
                }
                if options.verifySourceHashes {
                    say("hashing \(published.name) (\(size) bytes)")
                    hash = try options.hash(url, size: size, label: "  hashing \(published.name):")
                }
                let detail = "has no published size and sha256 in this build: found \(size) bytes\(hash.map { ", sha256 \($0)" } ?? "")"
                if options.strict { throw ConversionError.notPublished(file: published.name, detail: detail + "; --strict refuses it") }
                warn("\(published.name) \(detail) (recorded in the manifest, unverified)")
                sources.append(.init(name: published.name, bytes: size, sha256: hash, matchesPublished: nil))
                continue
            }
            var matches: Bool? = published.identities.contains { $0.size == size }
            if options.verifySourceHashes {
                say("hashing \(published.name) (\(size) bytes)")
                hash = try options.hash(url, size: size, label: "  hashing \(published.name):")
                matches = published.matches(size: size, sha256: hash!)
            }
            if matches == false {
                let expected = published.identities.map { "\($0.size) bytes, sha256 \($0.sha256)" }.joined(separator: " or ")
                let detail = "is not the published file: found \(size) bytes\(hash.map { ", sha256 \($0)" } ?? ""); published: \(expected)"
                if options.strict { throw ConversionError.notPublished(file: published.name, detail: detail + "; --strict refuses it") }
                warn("\(published.name) \(detail)")
            }
            sources.append(.init(name: published.name, bytes: size, sha256: hash, matchesPublished: matches))
        }

        // 2. Convert into a temporary sibling directory.
        let parent = output.deletingLastPathComponent()
        try? fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        let staging = parent.appendingPathComponent(".\(output.lastPathComponent).partial-\(UInt32.random(in: .min ... .max))")
        do {
            try fileManager.createDirectory(at: staging, withIntermediateDirectories: false)
        } catch {
            throw ConversionError.io("cannot create \(staging.path): \(error.localizedDescription)")
        }
        defer { try? fileManager.removeItem(at: staging) }

        let schema = options.schema ?? CheckpointSchema.published(family)
        var files: [ModelManifest.File] = []
        var dropped: [String] = []
        for plan in Self.plans(family) {
            let sourceURL = source.appendingPathComponent(plan.source)
            say("converting \(plan.source) → \(plan.output)")
            let tensors = try loadTensors(sourceURL)
            try validate(tensors, file: plan.source, against: schema.files[plan.source] ?? [:], strict: options.strict, warn: warn)
            let (converted, droppedHere) = transform(tensors, group: plan.group, dtype: options.dtype(plan.group))
            dropped += droppedHere.map { "\(plan.source):\($0)" }
            let outputURL = staging.appendingPathComponent(plan.output)
            var metadata = ["format": "chatterstream", "group": plan.group.rawValue]
            if plan.group == .t3 && tensors.contains(where: { GPT2Conv1DLayout.isConv1DWeight($0.name) }) {
                metadata[GPT2Conv1DLayout.metadataKey] = GPT2Conv1DLayout.transposedValue
            }
            try SafetensorsWriter.write(converted, metadata: metadata, to: outputURL.path)
            files.append(try describe(outputURL, group: plan.group.rawValue, dtype: options.dtype(plan.group).rawValue,
                                      tensors: converted.count, options: options))
        }

        // 3. The built-in voice.
        let condsURL = source.appendingPathComponent(ConvertedFiles.upstreamBuiltinVoice)
        if fileManager.fileExists(atPath: condsURL.path) {
            say("converting \(ConvertedFiles.upstreamBuiltinVoice) → \(ConvertedFiles.builtinVoice)")
            let checkpoint = try TorchCheckpoint(path: condsURL.path)
            let tensors = checkpoint.tensors().map { (name: $0.name, tensor: $0.tensor.contiguous()) }
            let outputURL = staging.appendingPathComponent(ConvertedFiles.builtinVoice)
            try SafetensorsWriter.write(tensors, metadata: ["format": "chatterstream", "group": "conds"], to: outputURL.path)
            files.append(try describe(outputURL, group: "conds", dtype: nil, tensors: tensors.count, options: options))
        }

        // 4. Tokenizer files, copied verbatim.
        let tensorSources = Set(Self.plans(family).map(\.source) + [ConvertedFiles.upstreamBuiltinVoice])
        for published in (options.publishedFiles ?? family.files) where !tensorSources.contains(published.name) {
            if published.isOptional && !fileManager.fileExists(atPath: source.appendingPathComponent(published.name).path) { continue }
            let destination = staging.appendingPathComponent(published.name)
            do { try fileManager.copyItem(at: source.appendingPathComponent(published.name), to: destination) } catch {
                throw ConversionError.io("cannot copy \(published.name): \(error.localizedDescription)")
            }
            files.append(try describe(destination, group: "tokenizer", dtype: nil, tensors: nil, options: options))
        }

        // 5. Manifest last, then the atomic swap into place.
        let manifest = ModelManifest(format: "chatterstream", formatVersion: ModelManifest.currentFormatVersion, family: family,
                                     files: files, sources: sources, dropped: dropped, createdBy: "chatter-convert (chatterstream)")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(manifest).write(to: staging.appendingPathComponent(ConvertedFiles.manifest))
        try Self.moveIntoPlace(staging, output, replacing: options.force)
        say("wrote \(output.path)")
        return Summary(family: family, output: output, manifest: manifest, warnings: warnings)
    }

    /// Tensors of a safetensors or torch file, in file order.
    func loadTensors(_ url: URL) throws -> [(name: String, tensor: Tensor)] {
        if url.pathExtension == "safetensors" {
            let file = try SafetensorsFile(path: url.path)
            return try file.names.map { ($0, try file.tensor($0)) }
        }
        return try TorchCheckpoint(path: url.path).tensors()
    }

    func validate(_ tensors: [(name: String, tensor: Tensor)], file: String, against expected: [String: CheckpointSchema.Entry],
                  strict: Bool, warn: (String) -> Void) throws {
        let present = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        for (name, entry) in expected.sorted(by: { $0.key < $1.key }) {
            guard let tensor = present[name] else {
                // The original s3gen.safetensors lacks this recomputable buffer; nothing else may be absent.
                if Self.unusedTensors.contains(name) { continue }
                throw ConversionError.missingTensor(file: file, tensor: name)
            }
            guard tensor.shape == entry.shape else {
                throw ConversionError.wrongShape(file: file, tensor: name, expected: entry.shape, actual: tensor.shape)
            }
            if tensor.dtype != entry.dtype {
                guard tensor.dtype.isFloatingPoint && entry.dtype.isFloatingPoint else {
                    throw ConversionError.wrongDType(file: file, tensor: name, expected: entry.dtype.rawValue, actual: tensor.dtype.rawValue)
                }
                warn("\(file): tensor '\(name)' is \(tensor.dtype), published as \(entry.dtype); converting")
            }
        }
        for name in present.keys.sorted() where expected[name] == nil {
            if strict { throw ConversionError.unexpectedTensor(file: file, tensor: name) }
            warn("\(file): unexpected tensor '\(name)' is dropped")
        }
    }

    /// Drops unused tensors, folds weight norm, transposes T3's GPT-2 `Conv1D` weights to [out, in]
    /// (so the decode GEMV reads them in place; the file is marked, see `GPT2Conv1DLayout`),
    /// converts dtypes. Returns the tensors to write and the names dropped.
    func transform(_ tensors: [(name: String, tensor: Tensor)], group: WeightGroup, dtype: DType) -> ([(name: String, tensor: Tensor)], [String]) {
        let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        var result: [(name: String, tensor: Tensor)] = []
        var dropped: [String] = []
        for (name, tensor) in tensors {
            if Self.unusedTensors.contains(name) || name.hasSuffix(".num_batches_tracked") {
                dropped.append(name)
                continue
            }
            // weight_norm (parametrizations) and legacy weight_g / weight_v pairs fold into `.weight`.
            if name.hasSuffix(".parametrizations.weight.original1") || name.hasSuffix(".weight_g") { continue }
            var outputName = name
            var value = tensor
            let normSuffix = ".parametrizations.weight.original0"
            if name.hasSuffix(normSuffix) {
                let base = String(name.dropLast(normSuffix.count))
                if let direction = byName[base + ".parametrizations.weight.original1"] {
                    outputName = base + ".weight"
                    value = foldWeightNorm(magnitude: tensor, direction: direction)
                }
            } else if name.hasSuffix(".weight_v"), let magnitude = byName[String(name.dropLast(2)) + "_g"] {
                outputName = String(name.dropLast(2))
                value = foldWeightNorm(magnitude: magnitude, direction: tensor)
            }
            if group == .t3 && GPT2Conv1DLayout.isConv1DWeight(name) {
                value = value.transposed().copy()
            }
            if value.dtype.isFloatingPoint {
                let target: DType = group == .t3 ? T3WeightPrecision.storedDType(outputName, shape: value.shape, target: dtype)
                    : value.rank >= 2 ? dtype : .f32
                if value.dtype != target { value = value.converted(to: target) }
            }
            result.append((outputName, value))
        }
        return (result, dropped)
    }

    func describe(_ url: URL, group: String, dtype: String?, tensors: Int?, options: Options) throws -> ModelManifest.File {
        let size = ModelStore.fileSize(url).map(Int.init) ?? 0
        let hash = try options.hash(url, size: size, label: "  hashing the new \(url.lastPathComponent):")
        return ModelManifest.File(name: url.lastPathComponent, bytes: size, sha256: hash, group: group, dtype: dtype, tensors: tensors)
    }

    /// Renames `staging` to `output`; an existing output is moved aside first and removed only
    /// after the new one is in place, so a failure never leaves a half-written model.
    static func moveIntoPlace(_ staging: URL, _ output: URL, replacing: Bool) throws {
        let fileManager = FileManager.default
        var aside: URL?
        if fileManager.fileExists(atPath: output.path) {
            guard replacing else { throw ConversionError.outputExists(output.path) }
            let old = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).old-\(UInt32.random(in: .min ... .max))")
            guard rename(output.path, old.path) == 0 else { throw ConversionError.io("cannot move the old \(output.path) aside: \(String(cString: strerror(errno)))") }
            aside = old
        }
        guard rename(staging.path, output.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let aside { _ = rename(aside.path, output.path) }
            throw ConversionError.io("cannot move the converted model into \(output.path): \(reason)")
        }
        if let aside { try? fileManager.removeItem(at: aside) }
    }
}
