import Foundation

/// The completion marker of a cached model, `chatterstream-model.json` in its directory. It is
/// written into the staging directory before the atomic rename, so a model directory with a
/// readable manifest whose files are all present with their recorded sizes is complete.
public struct CacheRecord: Codable, Sendable, Equatable {
    public static let fileName = "chatterstream-model.json"
    public static let currentFormat = 1

    public struct UpstreamFile: Codable, Sendable, Equatable {
        public let name: String
        public let size: Int64
        public let sha256: String
        /// True when the file had no published identity to check (accepted as first downloaded);
        /// nil for a verified one (and in records written before unpinned files existed).
        public var unpinned: Bool? = nil
    }

    public struct CachedFile: Codable, Sendable, Equatable {
        public let name: String
        public let size: Int64
    }

    public let format: Int
    public let family: String
    public let repository: String
    public let revision: String
    public let endpoint: String
    public let converter: String
    /// The verified upstream files the model was made from.
    public let upstream: [UpstreamFile]
    /// The files of the model directory (the manifest excluded).
    public let files: [CachedFile]
    public let created: String

    /// Whether `directory` still holds every file this manifest lists, with its size.
    func filesPresent(in directory: URL) -> Bool {
        files.allSatisfy { file in
            ModelStore.fileSize(directory.appendingPathComponent(file.name)) == file.size
        }
    }
}
