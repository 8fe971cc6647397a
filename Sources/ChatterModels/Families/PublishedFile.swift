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
///
/// A file of a family published after this build's identities were taken (Chatterbox-Nano: no hub
/// access when it was added) has none: it is *unpinned*. Such a file is accepted as first
/// downloaded, up to `sizeLimit` bytes (so a wrong URL cannot fill the disk), and its size and
/// sha256 are reported (`ModelStoreEvent.fileAcceptedUnpinned`) and recorded in the cache record
/// and the converted model's manifest, where they can be compared and then pinned here.
public struct PublishedFile: Sendable, Hashable, Codable {
    private enum CodingKeys: String, CodingKey { case name, identities, unpinnedSizeLimit, isOptional }
    public let name: String
    /// The accepted revisions; empty for an unpinned file.
    public let identities: [FileIdentity]
    /// An unpinned file's most bytes (nil for a pinned one, whose sizes are known).
    public let unpinnedSizeLimit: Int?
    /// Whether the model works without it (upstream carries on with a warning): a download that
    /// finds it absent (HTTP 404) and a conversion that does not find it go on without it.
    public private(set) var isOptional = false

    public init(name: String, identities: [FileIdentity]) {
        precondition(!identities.isEmpty, "a pinned file needs an identity; use PublishedFile.unpinned")
        self.name = name
        self.identities = identities
        unpinnedSizeLimit = nil
    }

    public init(name: String, size: Int, sha256: String) {
        self.init(name: name, identities: [FileIdentity(size: size, sha256: sha256)])
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        identities = try container.decode([FileIdentity].self, forKey: .identities)
        unpinnedSizeLimit = try container.decodeIfPresent(Int.self, forKey: .unpinnedSizeLimit)
        isOptional = try container.decodeIfPresent(Bool.self, forKey: .isOptional) ?? false
    }

    private init(unpinned name: String, sizeLimit: Int) {
        self.name = name
        identities = []
        unpinnedSizeLimit = sizeLimit
    }

    /// A file whose published identity is not known to this build, accepted up to `sizeLimit` bytes.
    public static func unpinned(_ name: String, sizeLimit: Int) -> PublishedFile {
        PublishedFile(unpinned: name, sizeLimit: sizeLimit)
    }

    /// This file, marked optional (`isOptional`).
    public func optional() -> PublishedFile {
        var file = self
        file.isOptional = true
        return file
    }

    /// Whether the file's published identities are known (and every copy is checked against them).
    public var isPinned: Bool { !identities.isEmpty }

    /// The most bytes a copy of this file may have.
    public var sizeLimit: Int { identities.map(\.size).max() ?? unpinnedSizeLimit ?? 0 }

    /// Whether a copy of `size` bytes can be this file before it is hashed: one of the published
    /// sizes, or (unpinned) any size up to `sizeLimit`.
    public func admits(size: Int) -> Bool {
        isPinned ? identities.contains { $0.size == size } : (0...sizeLimit).contains(size)
    }

    /// The identity a file with this size and hash matches, if any (never, when unpinned).
    public func matches(size: Int, sha256: String) -> Bool {
        identities.contains { $0.size == size && $0.sha256 == sha256.lowercased() }
    }

    /// The accepted sizes in words, for messages.
    public var expectedSizes: String {
        isPinned ? identities.map { "\($0.size)" }.joined(separator: " or ") + " bytes" : "at most \(sizeLimit) bytes (unpinned)"
    }
}
