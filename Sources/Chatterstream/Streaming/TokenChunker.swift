/// Groups generated speech tokens into the chunks handed to the vocoder (the Python package's
/// `TokenGenerator._should_yield`): the first chunk after `firstChunkTokens`, later ones after
/// `subsequentChunkTokens`, and with `.sentenceAligned` also on a silence token once a chunk holds
/// three tokens; with `.paced`, every token after the first chunk (the renderer paces them). A one-shot run (`SynthesisOptions.oneShot`) hands over `wholeUtteranceTokens` at a
/// time, i.e. the whole of any ordinary utterance in one chunk at the end.
struct TokenChunker {
    /// S3Gen's silence token (upstream `S3GEN_SIL`).
    static let silenceToken = 4299
    static let minimumSentenceChunk = 3

    let firstChunkTokens: Int
    let subsequentChunkTokens: Int
    let strategy: ChunkStrategy
    private(set) var pending: [Int] = []
    private(set) var chunksEmitted = 0

    init(config: SynthesisOptions) {
        if config.oneShot {
            firstChunkTokens = SynthesisOptions.wholeUtteranceTokens
            subsequentChunkTokens = SynthesisOptions.wholeUtteranceTokens
            strategy = .adaptive
        } else {
            firstChunkTokens = config.firstChunkTokens
            // A paced stream's renderer gathers the tokens after the first chunk itself
            // (`PlaybackPacer`): each is handed over as it comes.
            subsequentChunkTokens = config.strategy == .paced ? 1 : config.chunkTokens
            strategy = config.strategy
        }
    }

    /// Adds a token; returns a chunk when one is complete.
    mutating func add(_ token: Int) -> [Int]? {
        pending.append(token)
        let target = chunksEmitted == 0 ? firstChunkTokens : subsequentChunkTokens
        let onSilence = strategy == .sentenceAligned && pending.count >= Self.minimumSentenceChunk
            && token == Self.silenceToken
        guard pending.count >= target || onSilence else { return nil }
        return takePending()
    }

    /// Whatever is pending (possibly empty).
    mutating func flush() -> [Int] { takePending() }

    private mutating func takePending() -> [Int] {
        defer { pending = []; chunksEmitted += 1 }
        return pending
    }
}
