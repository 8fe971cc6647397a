import ChatterModels
import ChatterTensor
import Foundation

/// Conditionals of voice files, cached by (resolved path, modification time) with LRU eviction: a
/// file is analysed once until it changes.
final class ConditioningCache: @unchecked Sendable {
    private struct Key: Hashable {
        var path: String
        var modified: Date
    }

    let capacity: Int
    private let lock = NSLock()
    private var entries: [Key: Conditionals] = [:]
    private var order: [Key] = []  // least recently used first
    /// How many times the builder ran (a cache that works keeps this low).
    private(set) var builds = 0

    init(capacity: Int = 8) {
        self.capacity = capacity
    }

    /// The cached conditionals of `url`, or `build`'s (then cached).
    func conditioning(for url: URL, build: (URL) throws -> Conditionals) throws -> Conditionals {
        let path = url.resolvingSymlinksInPath().standardizedFileURL.path
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw StreamingTTSError.voiceNotFound(path: url.path)
        }
        let key = Key(path: path, modified: attributes[.modificationDate] as? Date ?? .distantPast)
        if let hit: Conditionals = lock.withLock({
            guard let value = entries[key] else { return nil }
            order.removeAll { $0 == key }
            order.append(key)
            return value
        }) { return hit }
        // Built outside the lock: analysis takes a while and other voices need not wait for it.
        let value = try build(URL(fileURLWithPath: path))
        lock.withLock {
            builds += 1
            for stale in order where stale.path == path && stale != key { entries[stale] = nil }
            order.removeAll { $0.path == path }
            entries[key] = value
            order.append(key)
            while order.count > capacity { entries[order.removeFirst()] = nil }
        }
        return value
    }

    var count: Int { lock.withLock { entries.count } }
}
