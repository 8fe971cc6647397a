/// Size and sha256 of one published revision of a file.
public struct FileIdentity: Sendable, Hashable, Codable {
    public let size: Int
    public let sha256: String

    public init(size: Int, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }
}

/// One upstream file as published: its name in the repository and the identities (size, sha256)
/// of the revisions we accept, the one we were built against first.
public struct PublishedFile: Sendable, Hashable, Codable {
    public let name: String
    public let identities: [FileIdentity]

    public init(name: String, identities: [FileIdentity]) {
        self.name = name
        self.identities = identities
    }

    public init(name: String, size: Int, sha256: String) {
        self.init(name: name, identities: [FileIdentity(size: size, sha256: sha256)])
    }

    /// The identity a file with this size and hash matches, if any.
    public func matches(size: Int, sha256: String) -> Bool {
        identities.contains { $0.size == size && $0.sha256 == sha256.lowercased() }
    }
}
