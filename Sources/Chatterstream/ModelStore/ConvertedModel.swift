import ChatterModels
import ChatterTensor
import Foundation

/// The manifest of a converted model directory (`manifest.json`); see weights-format.md.
public struct ModelManifest: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1

    public struct File: Codable, Sendable, Equatable {
        public var name: String
        public var bytes: Int
        public var sha256: String
        /// Weight group (`t3`, `s3gen`, `ve`, `conds`, `tokenizer`).
        public var group: String
        /// Compute dtype chosen for the group's matrices (safetensors files only).
        public var dtype: String?
        public var tensors: Int?
    }

    public struct Source: Codable, Sendable, Equatable {
        public var name: String
        public var bytes: Int
        /// `nil` when hashing was skipped.
        public var sha256: String?
        /// Whether size and hash equal a published revision of the file.
        public var matchesPublished: Bool?
    }

    public var format: String
    public var formatVersion: Int
    public var family: ModelFamily
    public var files: [File]
    public var sources: [Source]
    /// Upstream tensors deliberately not carried over (unused at inference, or recomputed).
    public var dropped: [String]
    public var createdBy: String
    /// Network shapes, for models that differ from the family's published ones (reduced test models);
    /// absent for the published checkpoints, whose hyper-parameters the family implies.
    public var hyperparameters: ModelHyperparameters?
}

/// Hyper-parameters the weights alone do not tell (head counts) and, for reduced models, the rest.
public struct ModelHyperparameters: Codable, Sendable, Equatable {
    public var t3: T3Config?
    public var s3genDecoderHeads: Int?
    public var hift: HiFTConfig?

    public init(t3: T3Config? = nil, s3genDecoderHeads: Int? = nil, hift: HiFTConfig? = nil) {
        self.t3 = t3
        self.s3genDecoderHeads = s3genDecoderHeads
        self.hift = hift
    }
}

/// A converted model directory, opened by memory-mapping its tensor files (no copy: opening a
/// full-size model whose pages are cached takes milliseconds).
public final class ConvertedModel: @unchecked Sendable {
    public let directory: URL
    public let manifest: ModelManifest
    private let tensorFiles: [String: SafetensorsFile]

    public init(directory: URL) throws {
        self.directory = directory
        let manifestURL = directory.appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw ConversionError.notAConvertedModel(directory.path, "no manifest.json (convert the upstream checkpoint with chatter-convert first)")
        }
        let manifest: ModelManifest
        do { manifest = try JSONDecoder().decode(ModelManifest.self, from: data) } catch {
            throw ConversionError.notAConvertedModel(directory.path, "manifest.json is unreadable: \(error)")
        }
        guard manifest.format == "chatterstream" else {
            throw ConversionError.notAConvertedModel(directory.path, "manifest format is '\(manifest.format)', not 'chatterstream'")
        }
        guard manifest.formatVersion == ModelManifest.currentFormatVersion else {
            throw ConversionError.notAConvertedModel(directory.path, "format version \(manifest.formatVersion) is not the supported \(ModelManifest.currentFormatVersion); re-convert with this version's chatter-convert")
        }
        // Names are plain file names in the directory: a manifest may not point anywhere else.
        for file in manifest.files where file.name.isEmpty || file.name.contains("/") || file.name == "." || file.name == ".."
            || file.name.contains("\0") {
            throw ConversionError.notAConvertedModel(directory.path, "manifest.json lists '\(file.name)', which is not a file name inside the model directory")
        }
        var files: [String: SafetensorsFile] = [:]
        for file in manifest.files where file.name.hasSuffix(".safetensors") {
            let path = directory.appendingPathComponent(file.name).path
            let opened = try SafetensorsFile(path: path)
            // The size of the file itself, through any symlink (a directory of links to the blobs of a
            // hub cache is a valid model): the mapping's, which fstat took on the opened file.
            let size = opened.byteCount
            guard size == file.bytes else {
                throw ConversionError.notAConvertedModel(directory.path, "\(file.name) is \(size) bytes, the manifest says \(file.bytes) (damaged copy? re-convert)")
            }
            files[file.name] = opened
        }
        self.manifest = manifest
        self.tensorFiles = files
    }

    public var family: ModelFamily { manifest.family }

    /// A tensor file of the model by name (`t3.safetensors`, `s3gen.safetensors`, `ve.safetensors`, `conds.safetensors`).
    public func file(_ name: String) throws -> SafetensorsFile {
        guard let file = tensorFiles[name] else { throw TensorError.missingTensor(path: directory.appendingPathComponent(name).path, tensor: "(file)") }
        return file
    }

    /// Path of a non-tensor file (tokenizer files).
    public func path(of name: String) -> URL { directory.appendingPathComponent(name) }
}
