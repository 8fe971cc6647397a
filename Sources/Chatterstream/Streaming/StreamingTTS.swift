import ChatterAudio
import ChatterModels
import ChatterTensor
import Foundation
import Logging
import Synchronization
/// A parameter of `StreamingTTS.init`: users of this module name it without importing ChatterModels.
@_exported import enum ChatterModels.S3GenPrecision

/// Streaming text-to-speech: text in, 24 kHz mono int16 chunks out, the first one fast.
///
///     let tts = try await StreamingTTS(model: .family(.chatterbox)).load()
///     for try await chunk in tts.synthesize("Hello there.") { play(chunk.pcm) }
///
/// Many tasks may call `synthesize` at once: runs are queued and executed one at a time (each run
/// already uses every core), in the order they were asked for, so outputs never mix; beyond
/// `maxQueuedRuns` waiting runs a new one fails at once with `StreamingTTSError.queueFull`. Cancelling
/// the task that consumes a stream (or dropping the stream) stops its generation before the next
/// decode step and frees its buffers; a queued run that is cancelled never starts.
public final class StreamingTTS: Sendable {
    /// Which model to run.
    public enum ModelSource: Sendable, Hashable {
        /// A family from the hub, downloaded, verified, converted and cached on first use (`ModelStore`).
        case family(ModelFamily, revision: String = "main")
        /// A converted model directory (`chatter-convert` output, weights-format.md).
        case directory(URL)
    }

    public enum Device: String, Sendable, CaseIterable {
        /// CUDA when available, else the CPU.
        case auto, cpu, cuda
    }

    /// Compute precision of T3's matrices, the weights that bound decode speed.
    public enum Precision: String, Sendable, CaseIterable {
        /// As the converted model stores them (f32 by default; `chatter-convert --dtype t3=bf16` halves
        /// the bytes read per token).
        case auto
        case f32
        case bf16
    }

    /// What `info` reports.
    public struct Info: Sendable, CustomStringConvertible {
        public var family: ModelFamily
        public var device: Device
        public var precision: String
        /// How T3's decode keeps its keys and values (`kvCachePrecision`).
        public var kvCachePrecision: KVCache.Precision
        /// The arithmetic of S3Gen's matrix products, resolved (`s3genPrecision`: f32 or bf16).
        public var s3genPrecision: S3GenPrecision
        public var watermark: String
        public var threads: Int

        public var description: String {
            "model \(family.rawValue), device \(device.rawValue), T3 precision \(precision), KV cache \(kvCachePrecision), S3Gen \(s3genPrecision), watermark \(watermark), \(threads) threads"
        }
    }

    public let model: ModelSource
    public let device: Device
    /// The options of calls that pass none.
    public let options: SynthesisOptions
    /// Most runs waiting for their turn (not counting the one running); nil: unbounded.
    public let maxQueuedRuns: Int?
    public let watermark: Bool
    public let precision: Precision
    /// How T3's KV cache stores keys and values during a run: f32 (the reference), or f16 / bf16,
    /// which halve the bytes each decode step reads from it (BENCHMARKS.md, "KV cache in 16 bits");
    /// nil (the default): f32 beside f32 T3 weights, f16 beside bf16, f16 or q8_0 ones, whose own
    /// error is 100-400x the f16 cache's. `info()` reports what the loaded engine uses.
    public let kvCachePrecision: KVCache.Precision?
    /// The arithmetic of S3Gen's matrix products: `auto` (the default) computes them in bf16 on CPUs
    /// with avx512_bf16, in f32 elsewhere; `f32` keeps the reference path everywhere (README, `--s3gen-precision`).
    public let s3genPrecision: S3GenPrecision
    /// The most work one request may ask for (README "Limits").
    public let limits: SynthesisLimits
    /// Where `.family` models are downloaded and cached.
    public let store: ModelStore
    let logger: Logger

    private struct State {
        var models: SpeechModels?
        var device: Device = .cpu
        var watermarkStatus = "off"
    }
    private let state = Mutex(State())
    /// Serialises loading (two first calls must not load twice).
    private let loadLock = AsyncLock()
    /// Runs are executed here, one at a time, first come first served.
    private let inference = DispatchQueue(label: "chatterstream.inference", qos: .userInitiated)
    /// Voice files' conditionals and the T3 conditioning prefixes of recent voices.
    let voices = Voices()
    /// Runs waiting on `inference`.
    private let queue = Mutex(0)
    /// The file beside a converted model where the engine keeps the built-in voice's T3 conditioning
    /// prefix (written after the first run that computes it, read at load; rewritten when it does
    /// not match the weights). Deleting it only costs the next process one cold prefill.
    public static let builtinVoicePrefixFileName = ConvertedFiles.builtinVoicePrefix

    /// T3 conditioning prefixes of the last few voices (see `Voices`).
    var prefixes: T3PrefixCache { voices.prefixes }

    /// - `store`: where `.family` models are fetched and cached (default: the Hugging Face hub as the
    ///   environment configures it: HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_OFFLINE).
    public init(model: ModelSource = .family(.chatterbox), device: Device = .auto, options: SynthesisOptions = SynthesisOptions(),
                watermark: Bool = true, precision: Precision = .auto, kvCachePrecision: KVCache.Precision? = nil,
                s3genPrecision: S3GenPrecision = .auto, store: ModelStore = ModelStore(), maxQueuedRuns: Int? = nil, logger: Logger = Logger(label: "chatterstream"),
                limits: SynthesisLimits = .standard) {
        self.model = model
        self.limits = limits
        self.precision = precision
        self.kvCachePrecision = kvCachePrecision
        self.s3genPrecision = s3genPrecision
        self.store = store
        self.device = device
        self.options = options
        self.maxQueuedRuns = maxQueuedRuns
        self.watermark = watermark
        self.logger = logger
    }

    /// Already-loaded models (tests, benchmarks).
    convenience init(models: SpeechModels, options: SynthesisOptions = SynthesisOptions(), maxQueuedRuns: Int? = nil,
                     logger: Logger = Logger(label: "chatterstream"), limits: SynthesisLimits = .standard) {
        self.init(model: .directory(URL(fileURLWithPath: "/")), device: .cpu, options: options,
                  watermark: models.watermarker != nil, maxQueuedRuns: maxQueuedRuns, logger: logger, limits: limits)
        state.withLock {
            $0.models = models
            $0.watermarkStatus = models.watermarker != nil ? "on" : "off"
        }
    }

    public var isLoaded: Bool { state.withLock { $0.models != nil } }

    /// Loads the model (downloading it first for `.family` when it is not cached). Explicit loading
    /// makes the first synthesis fast; returns `self` for chaining.
    @discardableResult
    public func load(progress: @escaping @Sendable (ModelStoreEvent) -> Void = { _ in }) async throws -> StreamingTTS {
        try await loadLock.withLock {
            if isLoaded { return }
            let resolvedDevice = try resolveDevice()
            let directory: URL
            switch model {
            case let .family(family, revision):
                // A file this build cannot verify is said out loud, whoever listens to `progress`.
                let logger = logger
                directory = try await store.ensure(family, revision: revision) { event in
                    if case let .fileAcceptedUnpinned(file, size, sha256) = event {
                        logger.warning("\(file) accepted unverified (\(size) bytes, sha256 \(sha256)): this build has no published size and sha256 for \(family.rawValue)'s files; both are recorded in the cached model's \(CacheRecord.fileName)")
                    }
                    progress(event)
                }
                if store.needsPkusegModel(for: family) {
                    // Upstream segments Chinese with spacy-pkuseg's model, and crashes when it cannot
                    // fetch it; here a model that cannot be had is a warning, and Chinese text is then
                    // coded unsegmented (the tokenizer says so again on the first Chinese text).
                    do {
                        _ = try await store.ensurePkusegModel(progress: progress)
                    } catch {
                        logger.warning("Chinese word segmentation will be skipped: \(error)")
                    }
                }
            case let .directory(url):
                directory = url
            }
            var marker: PerthWatermarker?
            var status = "off"
            if watermark {
                // Watermarking is on unless turned off explicitly: a missing checkpoint is installed
                // by the store (as the model is), and one that cannot be is an error, not silence.
                let checkpoint: URL
                if let found = PerthCheckpoint.locate() {
                    checkpoint = found
                } else {
                    logger.info("the Perth watermarker's checkpoint is not installed (looked in \(PerthCheckpoint.candidates().map(\.path).joined(separator: ", "))); installing it in \(store.perthCheckpointPath.path)")
                    checkpoint = try await store.ensurePerthCheckpoint(progress: progress)
                }
                marker = try PerthWatermarker(checkpointPath: checkpoint.path)
                status = "on (Perth, \(checkpoint.path))"
            }
            let models = try SpeechModels.load(directory: directory, watermarker: marker, kvCachePrecision: kvCachePrecision,
                                                s3genPrecision: s3genPrecision)
            if precision != .auto, models.precision.lowercased() != precision.rawValue {
                throw StreamingTTSError.modelUnusable("T3 in \(directory.path) is \(models.precision), not \(precision.rawValue): convert it with `chatter-convert <upstream dir> <out dir> --dtype t3=\(precision.rawValue)`, or use precision .auto")
            }
            var builtinVoice = ""
            if let attached = voices.attachBuiltinPrefix(of: models) {
                switch attached.outcome {
                case .loaded: builtinVoice = ", built-in voice warm"
                case .absent: break
                case let .rejected(reason): logger.debug("ignoring \(attached.path) (\(reason)); it is rewritten after the next run")
                }
            }
            state.withLock {
                $0.models = models
                $0.device = resolvedDevice
                $0.watermarkStatus = status
            }
            logger.info("loaded \(models.family.rawValue) from \(directory.path) (T3 \(models.precision), S3Gen \(models.s3gen.precision), watermark \(status)\(builtinVoice))")
        }
        return self
    }

    private func resolveDevice() throws -> Device {
        switch device {
        case .cpu, .auto: return .cpu  // this build has no CUDA backend yet
        case .cuda: throw StreamingTTSError.deviceUnavailable("this build has no CUDA backend; use .cpu or .auto")
        }
    }

    /// Model, device, precision and watermark of the loaded engine (loads it if needed).
    public func info() async throws -> Info {
        if !isLoaded { try await load() }
        return state.withLock { s in
            Info(family: s.models!.family, device: s.device, precision: s.models!.precision, kvCachePrecision: s.models!.kvCachePrecision,
                 s3genPrecision: s.models!.s3gen.precision,
                 watermark: s.watermarkStatus, threads: ThreadPool.shared.threadCount)
        }
    }

    /// Speaks `text` as a stream of chunks. The stream throws `StreamingTTSError` for bad input (empty
    /// text, a missing or unusable voice file, an out-of-range option, a full queue) and the model's
    /// typed errors; options are checked before the run is queued. `options` replace the engine's for
    /// this call; `encoding` fills each chunk's `encoded`.
    public func synthesize(_ text: String, voice: Voice = .builtin, options: SynthesisOptions? = nil,
                           encoding: AudioFormat? = nil) -> AsyncThrowingStream<AudioChunk, Error> {
        synthesize(text, voice: voice, options: options, encoding: encoding, onDecodeStep: nil)
    }

    /// Runs waiting for their turn now.
    public var queuedRuns: Int { queue.withLock { $0 } }

    func synthesize(_ text: String, voice: Voice, options override: SynthesisOptions?, encoding: AudioFormat? = nil,
                    onDecodeStep: (@Sendable (Int) -> Void)?) -> AsyncThrowingStream<AudioChunk, Error> {
        let (stream, continuation) = AsyncThrowingStream<AudioChunk, Error>.makeStream()
        let cancellation = SynthesisCancellation()
        // The request's whole life (loading, the queue, the run) is bounded by `maxWallSeconds`: at
        // the deadline the stream ends with the limit's error and the run, queued or running, is
        // cancelled. The run's own checks (every decode step and chunk) count from the same instant.
        let accepted = ContinuousClock.now
        let deadline = CancellableDeadline(after: limits.maxWallSeconds) { [limits] in
            continuation.finish(throwing: SynthesisLimitExceeded.wallTime(limits.maxWallSeconds))
            cancellation.cancel()
        }
        continuation.onTermination = { _ in
            cancellation.cancel()
            deadline.cancel()
        }
        let config = override ?? self.options
        Task {
            let resolved: ResolvedSynthesisOptions
            do {
                if !isLoaded {
                    logger.warning("the model is not loaded: loading it now (call load() first to make the first synthesis fast)")
                    try await load()
                }
                let models = state.withLock { $0.models! }
                resolved = try config.validate(for: models.family)
                // The model's own bound on max_tokens (its speech positions), beyond the family-wide one.
                if let t3 = models.t3 { try resolved.sampling.validate(for: t3.config) }
                try checkReferenceSize(of: voice)
                try admitToQueue()
            } catch {
                continuation.finish(throwing: error)
                return
            }
            inference.async { [self] in
                queue.withLock { $0 -= 1 }
                InFlightRuns.shared.run(cancellation: cancellation) {
                    do {
                        guard !cancellation.isCancelled else { throw StreamingTTSError.cancelled }
                        let models = state.withLock { $0.models! }
                        let pieces = try SynthesisRun.textPieces(text, models: models, config: config, limits: limits)
                        let conditioning = try voices.conditionals(for: voice, models: models, exaggeration: resolved.sampling.exaggeration)
                        let seed = config.seed ?? UInt64.random(in: 0...UInt64.max)
                        var run = SynthesisRun(models: models, config: resolved, seed: seed, cancellation: cancellation,
                                               started: accepted, emit: { continuation.yield($0) })
                        run.onDecodeStep = onDecodeStep
                        run.encoding = encoding
                        run.prefixes = prefixes
                        run.limits = limits
                        let done = try run.run(textPieces: pieces, voice: conditioning)
                        logger.debug("synthesized \(pieces.count) text pieces: \(done.decodeSteps) decode steps, \(done.speechTokens) speech tokens, \(done.samples) samples in \(done.chunks) chunks (\(done.s3genCalls) S3Gen calls, \(done.s3genWork.flow.estimatorFrameSteps) CFM frame-steps); T3 conditioning prefix reused for \(done.prefixesReused), built for \(done.prefixesBuilt) pieces")
                        // Once per model, after the audio: keep the built-in voice's prefix for the next process.
                        do {
                            if let path = try prefixes.persistPending() { logger.debug("wrote the built-in voice's T3 conditioning prefix to \(path)") }
                        } catch {
                            logger.debug("could not keep the built-in voice's T3 conditioning prefix on disk: \(error)")
                        }
                        continuation.finish()
                    } catch {
                        continuation.finish(throwing: error)
                }
                }
            }
        }
        return stream
    }

    /// Counts a run into the queue, or refuses it when `maxQueuedRuns` are already waiting.
    private func admitToQueue() throws {
        try queue.withLock { waiting in
            if let limit = maxQueuedRuns, waiting >= limit { throw StreamingTTSError.queueFull(limit: limit) }
            waiting += 1
        }
    }

    /// Refuses a voice file larger than `limits.maxReferenceBytes` before anything reads it.
    private func checkReferenceSize(of voice: Voice) throws {
        guard case let .file(url) = voice else { return }
        try checkReferenceSize(url)
    }

    private func checkReferenceSize(_ url: URL) throws {
        if let bytes = ModelStore.fileSize(url), bytes > Int64(limits.maxReferenceBytes) {
            throw SynthesisLimitExceeded(limit: "maxReferenceBytes", value: Double(bytes), maximum: Double(limits.maxReferenceBytes),
                                         advice: "use a shorter recording of the voice (10 to 60 s is plenty)")
        }
    }

    /// Analyses a reference recording and saves its conditionals to `destination` (a `.safetensors`
    /// file that `Voice.file` takes), atomically; runs in the queue like a synthesis.
    public func saveVoice(fromRecording recording: URL, to destination: URL) async throws {
        if !isLoaded { try await load() }
        try checkReferenceSize(recording)
        try admitToQueue()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            inference.async { [self] in
                queue.withLock { $0 -= 1 }
                continuation.resume(with: Result {
                    try InFlightRuns.shared.run(cancellation: nil) {
                        let models = state.withLock { $0.models! }
                        let exaggeration = options.resolved(for: models.family).sampling.exaggeration
                        try Voices.conditionals(fromFile: recording, models: models, exaggeration: exaggeration).write(to: destination)
                    }
                })
            }
        }
    }

    /// Conditionals built from files so far (for tests: the cache works).
    var voiceCacheBuilds: Int { voices.files.builds }
}

/// A FIFO async mutex (no thread blocks while waiting).
final class AsyncLock: Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { s -> Bool in
                if !s.locked { s.locked = true; return true }
                s.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.locked = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
