import Chatterstream
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server's voices, in a directory (`--voices DIR`): each voice is `<id>.safetensors`, its
/// conditionals, built once from the uploaded recording, and `<id>.json`, its name. Requests name
/// voices by id only: an id is 1–64 letters, digits, `-` or `_`, so no request can name a path.
public final class VoiceLibrary: Sendable {
    public let directory: URL
    /// OpenAI's voice names: they speak with the server's default voice unless the library defines them.
    public static let openAIVoices: Set<String> = ["alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx",
                                                   "sage", "shimmer", "verse", "marin", "cedar"]

    public struct Entry: Codable, Sendable, Equatable {
        public let id: String
        public let name: String
        public let created: Int
    }

    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    public static func isValidID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F
        }
    }

    func conditionalsURL(_ id: String) -> URL { directory.appendingPathComponent("\(id).safetensors") }
    private func metadataURL(_ id: String) -> URL { directory.appendingPathComponent("\(id).json") }

    /// The voice `id` when the library has it.
    func voice(_ id: String) -> Voice? {
        guard Self.isValidID(id), FileManager.default.fileExists(atPath: conditionalsURL(id).path) else { return nil }
        return .file(conditionalsURL(id))
    }

    public func list() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            guard let data = try? Data(contentsOf: directory.appendingPathComponent(name)),
                  let entry = try? JSONDecoder().decode(Entry.self, from: data),
                  voice(entry.id) != nil else { return nil }
            return entry
        }.sorted { $0.id < $1.id }
    }

    /// Stores a voice: `build` writes its conditionals to the URL it is given (a temporary file,
    /// renamed into place only when complete).
    func add(id: String, name: String, build: (URL) async throws -> Void) async throws -> Entry {
        let temporary = directory.appendingPathComponent(".upload-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: temporary) }
        try await build(temporary)
        let entry = Entry(id: id, name: name, created: Int(Date().timeIntervalSince1970))
        try JSONEncoder().encode(entry).write(to: metadataURL(id), options: .atomic)
        guard rename(temporary.path, conditionalsURL(id).path) == 0 else {
            throw APIError(.internalServerError, "could not store voice '\(id)' (errno \(errno))")
        }
        return entry
    }

    /// Removes voice `id`; false when there is none.
    func remove(_ id: String) -> Bool {
        guard voice(id) != nil else { return false }
        try? FileManager.default.removeItem(at: conditionalsURL(id))
        try? FileManager.default.removeItem(at: metadataURL(id))
        return true
    }
}

/// Opening a voice path a request named (only with `--allow-voice-paths`): regular files only,
/// checked through a non-blocking open (a FIFO or device never blocks the server), and a missing
/// path answered exactly as a refused one, so a request learns nothing about the server's files.
enum VoicePath {
    static func check(_ path: String) throws(APIError) -> URL {
        let refused = APIError(.notFound, "no usable voice file at '\(path)' (voice paths must name a readable regular file on the server)", param: "voice")
        guard path.hasPrefix("/") else { throw refused }
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw refused }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw refused }
        return URL(fileURLWithPath: path)
    }
}
