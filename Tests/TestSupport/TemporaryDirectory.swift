import Foundation

/// A fresh directory under the system temporary folder, removed with everything in it when the
/// value goes away.
public final class TemporaryDirectory {
    public let url: URL

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("chatterstream-\(UUID())")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The URL of `name` inside the directory.
    public func path(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// The file-system path of `name` inside the directory.
    public func filePath(_ name: String) -> String { path(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}
