import Foundation

/// Whole-file writes that never leave a partial file: the bytes go to a hidden temporary file in the
/// destination folder, which is renamed over the destination only once complete.
enum AtomicFile {
    /// Writes `data` to `path`; on failure returns the reason (and nothing is left at `path` or beside it).
    static func write(_ data: Data, to path: String) -> String? {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        do {
            try data.write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            return "\(error)"
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            return reason
        }
        return nil
    }
}
