import ChatterModels
import Foundation

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
///
/// With a `T3PrefixPersistence` attached, the built-in voice's prefix is also kept on disk beside the
/// model, so a new process starts that voice warm; see `attach(_:model:)` and `persistPending()`.
final class T3PrefixCache: @unchecked Sendable {
    let capacity: Int
    private let lock = NSLock()
    private var entries: [T3ConditioningInputs: T3PrefixState] = [:]
    private var order: [T3ConditioningInputs] = []  // least recently used first
    private var hitCount = 0
    private var buildCount = 0
    private var persistence: T3PrefixPersistence?
    /// The file is missing, stale or unreadable: the next covered prefix built is written.
    private var persistedFileWanted = false
    private var pendingPersist: T3PrefixState?
    /// Lookups served from the cache, and prefixes computed (for tests and benchmarks).
    var hits: Int { lock.withLock { hitCount } }
    var builds: Int { lock.withLock { buildCount } }

    /// What `attach` found on disk.
    enum PersistedPrefix: Equatable {
        /// Read and cached: the built-in voice starts warm.
        case loaded
        /// No file yet; the first build of the built-in voice's prefix writes one.
        case absent
        /// A file for other weights, another format or damaged: it is rewritten at the next build.
        case rejected(String)
    }

    /// Attaches `persistence` and loads its file into the cache when it belongs to `model`.
    @discardableResult
    func attach(_ persistence: T3PrefixPersistence, model: T3) -> PersistedPrefix {
        let outcome: PersistedPrefix
        var loaded: T3PrefixState?
        if !FileManager.default.fileExists(atPath: persistence.path) {
            outcome = .absent
        } else {
            do {
                let state = try T3PrefixState(contentsOf: persistence.path, model: model, fingerprint: persistence.fingerprint)
                guard let inputs = state.inputs, persistence.covers(inputs) else {
                    throw T3Error.prefixMismatch(reason: "\(persistence.path) holds another voice")
                }
                loaded = state
                outcome = .loaded
            } catch {
                outcome = .rejected("\(error)")
            }
        }
        lock.withLock {
            self.persistence = persistence
            persistedFileWanted = outcome != .loaded
            if let loaded, let inputs = loaded.inputs, capacity > 0 { store(loaded, for: inputs) }
        }
        return outcome
    }

    /// Writes the built-in voice's prefix if one was built since `attach` found no usable file, and
    /// returns the path written (nil when there was nothing to write). Called by the engine after a
    /// run, off the path to first audio; a failure (read-only model directory, full disk) is thrown
    /// for the caller to log, and the cache keeps working from memory.
    @discardableResult
    func persistPending() throws -> String? {
        let (state, persistence) = lock.withLock { () -> (T3PrefixState?, T3PrefixPersistence?) in
            defer { pendingPersist = nil }
            return (pendingPersist, self.persistence)
        }
        guard let state, let persistence else { return nil }
        try state.write(to: persistence.path, fingerprint: persistence.fingerprint)
        return persistence.path
    }

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
            store(state, for: inputs)
            if persistedFileWanted, let persistence, persistence.covers(inputs) {
                persistedFileWanted = false
                pendingPersist = state
            }
        }
        return (state, false)
    }

    /// Caches `state` as the most recently used entry (the lock is held).
    private func store(_ state: T3PrefixState, for inputs: T3ConditioningInputs) {
        order.removeAll { $0 == inputs }
        entries[inputs] = state
        order.append(inputs)
        while order.count > capacity { entries[order.removeFirst()] = nil }
    }

    var count: Int { lock.withLock { entries.count } }
}

/// Where a model's built-in voice keeps its T3 conditioning prefix on disk, and the weights it
/// must have been computed with.
struct T3PrefixPersistence: Sendable {
    /// The file (`builtin-voice-t3-prefix.safetensors` in the converted model directory).
    let path: String
    /// Identifies T3's weights: the manifest's sha256 and dtype of `t3.safetensors`.
    let fingerprint: String
    /// The built-in voice.
    let speakerEmbedding: [Float]
    let promptTokens: [Int]

    /// Whether `inputs` are the built-in voice's (at any exaggeration: the file holds the first built).
    func covers(_ inputs: T3ConditioningInputs) -> Bool {
        inputs.speakerEmbedding == speakerEmbedding && inputs.promptTokens == promptTokens
    }
}

extension T3PrefixPersistence {
    /// The built-in voice's prefix file of a converted model, fingerprinted by the manifest's sha256
    /// and dtype of T3's weights; nil when the manifest does not list them.
    static func builtinVoice(of model: ConvertedModel, voice: Conditionals) -> T3PrefixPersistence? {
        model.manifest.files.first { $0.name == ConvertedFiles.t3 }.map {
            T3PrefixPersistence(path: model.directory.appendingPathComponent(ConvertedFiles.builtinVoicePrefix).path,
                                fingerprint: "\(ConvertedFiles.t3) sha256 \($0.sha256) \($0.dtype ?? "F32")",
                                speakerEmbedding: voice.t3.speakerEmb, promptTokens: voice.t3.condPromptSpeechTokens ?? [])
        }
    }
}
