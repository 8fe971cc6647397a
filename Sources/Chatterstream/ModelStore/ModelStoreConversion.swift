import Foundation

/// The hook the model store calls once every upstream file of a family is downloaded and verified:
/// it reads `upstreamDirectory` (the published files under their hub names) and writes the cached
/// model into `outputDirectory` (empty, on the same file system, renamed into place only after the
/// hook returns). `name` is recorded in the cache manifest: a cache written by another converter is
/// not a cache hit.
public struct ModelStoreConversion: Sendable {
    public typealias Convert = @Sendable (_ upstreamDirectory: URL, _ outputDirectory: URL, _ family: ModelFamily) throws -> Void

    public let name: String
    public let convert: Convert

    public init(name: String, convert: @escaping Convert) {
        self.name = name
        self.convert = convert
    }

    /// The default: `ModelConverter` writes our format (weights-format.md) from the verified upstream
    /// files. Source hashes are not recomputed: the store verified every file as it arrived.
    public static let chatterstreamFormat = ModelStoreConversion(name: "chatterstream-format-\(ModelManifest.currentFormatVersion)") { upstream, output, _ in
        var options = ModelConverter.Options()
        options.verifySourceHashes = false
        options.force = true  // `output` is the store's empty staging directory
        _ = try ModelConverter().convert(from: upstream, to: output, options: options)
    }

    /// No conversion at all (for tests of the download path, and for inspecting upstream files). The verified upstream
    /// files themselves become the cached model (hard-linked, or copied across file systems), under
    /// their hub names. Loaders must therefore accept the upstream layout (safetensors / .pt as
    /// published) from a directory cached with this converter; its manifest says `upstream-files`.
    public static let keepUpstreamFiles = ModelStoreConversion(name: "upstream-files") { upstream, output, _ in
        let manager = FileManager.default
        let names = try manager.contentsOfDirectory(atPath: upstream.path)
        for name in names.sorted() where !name.hasSuffix(ModelStore.partialSuffix) {
            let source = upstream.appendingPathComponent(name)
            let destination = output.appendingPathComponent(name)
            do {
                try manager.linkItem(at: source, to: destination)
            } catch {
                try manager.copyItem(at: source, to: destination)
            }
        }
    }
}
