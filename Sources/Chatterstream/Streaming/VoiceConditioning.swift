import ChatterModels
import ChatterTensor
import Foundation

/// What a voice contributes to a synthesis: T3's speaker embedding and prompt speech tokens, and
/// S3Gen's reference (prompt tokens, prompt mel, x-vector). Upstream `Conditionals`.
struct VoiceConditioning: Sendable {
    var speakerEmbedding: [Float]
    var promptTokens: [Int]
    var reference: FlowReference

    /// From tensors under upstream's `Conditionals` names (`t3.speaker_emb`,
    /// `t3.cond_prompt_speech_tokens`, `gen.prompt_token`, `gen.prompt_feat`, `gen.embedding`), as in
    /// a converted model's `conds.safetensors`.
    init(store: some WeightStore) throws {
        speakerEmbedding = try store.tensor("t3.speaker_emb").converted(to: .f32).contiguous().scalars()
        promptTokens = store.contains("t3.cond_prompt_speech_tokens")
            ? try store.tensor("t3.cond_prompt_speech_tokens").converted(to: .f32).contiguous().scalars().map { Int($0) }
            : []
        reference = try S3Gen.reference(from: store)
    }

    init(speakerEmbedding: [Float], promptTokens: [Int], reference: FlowReference) {
        self.speakerEmbedding = speakerEmbedding
        self.promptTokens = promptTokens
        self.reference = reference
    }
}

/// Conditionals of voice files, cached by (resolved path, modification time) with LRU eviction: a
/// file is analysed once until it changes.
final class ConditioningCache: @unchecked Sendable {
    private struct Key: Hashable {
        var path: String
        var modified: Date
    }

    let capacity: Int
    private let lock = NSLock()
    private var entries: [Key: VoiceConditioning] = [:]
    private var order: [Key] = []  // least recently used first
    /// How many times the builder ran (a cache that works keeps this low).
    private(set) var builds = 0

    init(capacity: Int = 8) {
        self.capacity = capacity
    }

    /// The cached conditionals of `url`, or `build`'s (then cached).
    func conditioning(for url: URL, build: (URL) throws -> VoiceConditioning) throws -> VoiceConditioning {
        let path = url.resolvingSymlinksInPath().standardizedFileURL.path
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw StreamingTTSError.voiceNotFound(path: url.path)
        }
        let key = Key(path: path, modified: attributes[.modificationDate] as? Date ?? .distantPast)
        if let hit: VoiceConditioning = lock.withLock({
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
