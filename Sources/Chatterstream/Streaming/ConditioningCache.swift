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

/// T3 conditioning prefixes (`T3PrefixState`: every layer's keys and values of the conditioning
/// rows) of recent voices, least recently used evicted. A repeated voice then skips the conditioning
/// rows of each T3 prefill (376 of ~417 positions for Turbo), and so does every piece of a text
/// split into several, each of which runs its own prefill.
///
/// Keyed by the conditioning inputs themselves (speaker embedding, prompt tokens, and the
/// exaggeration where the model has an emotion projection): that is what the conditioning cache's
/// (path, modification time) key, the built-in voice or a saved conditionals file stands for, so a
/// voice maps to one entry whichever way it came, and a changed file cannot pick up a stale prefix.
/// An entry built by another `T3` instance is rebuilt, never used.
///
/// Memory bound: `capacity` entries of `T3PrefixState.byteCount` each, ≈ 74 MB for full-size Turbo
/// in f32 (24 layers × 376 positions × 1024 × keys and values × 4 B) and ≈ 8.4 MB for the original
/// model (30 × 34 × 1024 × 2 × 4 B), so the default capacity of 4 holds at most ≈ 300 MB.
final class T3PrefixCache: @unchecked Sendable {
    let capacity: Int
    private let lock = NSLock()
    private var entries: [T3ConditioningInputs: T3PrefixState] = [:]
    private var order: [T3ConditioningInputs] = []  // least recently used first
    private var hitCount = 0
    private var buildCount = 0
    /// Lookups served from the cache, and prefixes computed (for tests and benchmarks).
    var hits: Int { lock.withLock { hitCount } }
    var builds: Int { lock.withLock { buildCount } }

    /// `capacity` 0 turns the cache off (every prefill then runs in full).
    init(capacity: Int = 4) {
        self.capacity = capacity
    }

    /// The prefix of `inputs` on `model`, cached or built (then cached), and whether it was cached;
    /// nil when the cache is off.
    func prefix(model: T3, inputs: T3ConditioningInputs) throws -> (state: T3PrefixState, reused: Bool)? {
        guard capacity > 0 else { return nil }
        if let hit: T3PrefixState = lock.withLock({
            guard let state = entries[inputs], state.modelID == model.instanceID else { return nil }
            hitCount += 1
            order.removeAll { $0 == inputs }
            order.append(inputs)
            return state
        }) { return (hit, true) }
        // Built outside the lock: it is a backbone pass over the conditioning.
        let state = try T3PrefixState(model: model, inputs: inputs)
        lock.withLock {
            buildCount += 1
            order.removeAll { $0 == inputs }
            entries[inputs] = state
            order.append(inputs)
            while order.count > capacity { entries[order.removeFirst()] = nil }
        }
        return (state, false)
    }

    var count: Int { lock.withLock { entries.count } }
}
