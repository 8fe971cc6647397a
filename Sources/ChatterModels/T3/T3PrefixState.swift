import ChatterTensor

/// What a T3 conditioning is made from: the voice (speaker embedding, prompt speech tokens) and, for
/// models with an emotion projection (the original Llama model), the exaggeration. Two equal values
/// give the same conditioning on the same model, so this identifies a `T3PrefixState` exactly (a
/// cache key compares the inputs themselves, not a digest that could collide).
public struct T3ConditioningInputs: Hashable, Sendable {
    public let speakerEmbedding: [Float]
    public let promptTokens: [Int]
    /// The exaggeration, or nil where `config` has no emotion conditioning (it then does not reach
    /// T3, so every exaggeration shares one prefix).
    public let exaggeration: Float?

    public init(config: T3Config, speakerEmbedding: [Float], promptTokens: [Int], exaggeration: Float) {
        self.speakerEmbedding = speakerEmbedding
        self.promptTokens = promptTokens
        self.exaggeration = config.emotionConditioning ? exaggeration : nil
    }
}

/// The keys and values of T3's conditioning rows in every layer, computed once per voice.
///
/// The prefill runs over `[conditioning | text | start-of-speech…]` with causal attention, so the
/// conditioning positions' keys and values depend only on the model and the conditioning, never on
/// the text. A decoder started from this state (`T3Decoder(model:prefix:…)`) copies them into its
/// KV cache and runs the backbone over the remaining rows only: for Turbo that is ~41 of ~417
/// positions. Positions continue from the cache length (GPT-2's learned `wpe` rows and Llama's
/// rotary angles alike), so the result equals a full prefill up to GEMM summation order.
///
/// One row is stored and copied into every batch row: the two CFG rows of the Llama model share the
/// conditioning (only their text differs). Size: 2 · layers · len_cond · hidden · 4 bytes (Turbo:
/// 24 · 376 · 1024 · 8 B ≈ 74 MB; original: 30 · 34 · 1024 · 8 B ≈ 8.4 MB), see `byteCount`.
///
/// It belongs to one `T3` instance (`modelID`); a decoder given another model's prefix throws
/// `T3Error.prefixMismatch` rather than attend over foreign keys.
public struct T3PrefixState: Sendable {
    /// `T3.instanceID` of the model that computed it.
    public let modelID: UInt64
    /// Conditioning positions it holds (len_cond).
    public let conditioningLength: Int
    /// Batch rows stored: 1, copied into every row of a decoder (CFG rows share the conditioning).
    public let rows: Int
    public let layers: Int
    public let heads: Int
    public let headDim: Int
    /// The inputs the conditioning was made from; nil when it was built from a bare conditioning
    /// tensor (`T3TokenIterator` then cannot check it and refuses it for emotion models).
    public let inputs: T3ConditioningInputs?
    /// Per layer, [1, H, len_cond, hd].
    let keys: [Tensor]
    let values: [Tensor]
    /// The conditioning [len_cond, D] and its post-final-norm hidden states [len_cond, D], so that a
    /// decoder started from this state still reports its whole prefill (`prefillEmbeddings`,
    /// `prefillHidden`).
    let conditioning: Tensor
    let hidden: Tensor

    /// Runs the backbone over `conditioning` [len_cond, D] (one row, positions from 0) and keeps every
    /// layer's keys and values.
    public init(model: T3, conditioning: Tensor) throws {
        try self.init(model: model, conditioning: conditioning, inputs: nil)
    }

    /// Builds the conditioning from `inputs` (`T3.conditioning`) and its prefix state.
    public init(model: T3, inputs: T3ConditioningInputs) throws {
        let conditioning = try model.conditioning(speakerEmbedding: inputs.speakerEmbedding, promptTokens: inputs.promptTokens,
                                                  exaggeration: inputs.exaggeration ?? 0)
        try self.init(model: model, conditioning: conditioning, inputs: inputs)
    }

    private init(model: T3, conditioning: Tensor, inputs: T3ConditioningInputs?) throws {
        let c = model.config
        guard conditioning.rank == 2, conditioning.shape[0] > 0, conditioning.shape[1] == c.hiddenSize else {
            throw T3Error.prefixMismatch(reason: "conditioning of shape \(conditioning.shape), expected [len_cond, \(c.hiddenSize)]")
        }
        let length = conditioning.shape[0]
        guard length < model.maxSequenceLength else {
            throw T3Error.prefixMismatch(reason: "conditioning of \(length) positions leaves none of the model's \(model.maxSequenceLength)")
        }
        // Always an f32 cache: the state is shared by decoders of every KV cache precision, and a
        // 16-bit one rounds these keys and values when it copies them in (`load(into:)`).
        let cache = model.makeCache(batch: 1, capacity: length, precision: .f32)
        var unobserved: [T3AttentionHead: [Float]] = [:]
        let hidden = model.backbone(conditioning.unsqueezed(0), cache: cache, probabilities: &unobserved)
        // The cache holds exactly `length` positions, so these views are contiguous: no copy is made,
        // the state takes over the cache's buffers.
        keys = (0..<c.layers).map { cache.keys(layer: $0).contiguous() }
        values = (0..<c.layers).map { cache.values(layer: $0).contiguous() }
        modelID = model.instanceID
        conditioningLength = length
        rows = 1
        layers = c.layers
        heads = c.heads
        headDim = c.headDim
        self.inputs = inputs
        self.conditioning = conditioning
        self.hidden = hidden.reshaped([length, c.hiddenSize])
    }

    /// A state from its parts, as `T3PrefixState(contentsOf:model:fingerprint:)` reads them back.
    init(modelID: UInt64, conditioningLength: Int, layers: Int, heads: Int, headDim: Int, inputs: T3ConditioningInputs?,
         keys: [Tensor], values: [Tensor], conditioning: Tensor, hidden: Tensor) {
        self.modelID = modelID
        self.conditioningLength = conditioningLength
        rows = 1
        self.layers = layers
        self.heads = heads
        self.headDim = headDim
        self.inputs = inputs
        self.keys = keys
        self.values = values
        self.conditioning = conditioning
        self.hidden = hidden
    }

    /// Bytes held by the keys, values, conditioning and hidden states.
    public var byteCount: Int {
        (keys + values).reduce(0) { $0 + $1.byteCount } + conditioning.byteCount + hidden.byteCount
    }

    /// Throws unless this state was computed by `model`.
    public func check(model: T3) throws {
        guard modelID == model.instanceID else {
            throw T3Error.prefixMismatch(reason: "built by another T3 instance (\(modelID), this one is \(model.instanceID))")
        }
        // Implied by the instance, checked so that a bug elsewhere cannot turn into out-of-bounds copies.
        let c = model.config
        guard layers == c.layers, heads == c.heads, headDim == c.headDim, rows == 1 else {
            throw T3Error.prefixMismatch(reason: "holds \(layers) layers × \(heads) heads × \(headDim), the model has \(c.layers) × \(c.heads) × \(c.headDim)")
        }
    }

    /// Throws unless this state was computed by `model` from exactly `inputs`.
    public func check(model: T3, inputs expected: T3ConditioningInputs) throws {
        try check(model: model)
        guard let inputs else {
            throw T3Error.prefixMismatch(reason: "built from a bare conditioning tensor, so it cannot be matched to a voice")
        }
        let expectedLength = model.config.conditioningLength(promptTokens: expected.promptTokens.count)
        guard conditioningLength == expectedLength else {
            throw T3Error.prefixMismatch(reason: "holds \(conditioningLength) conditioning positions, this voice makes \(expectedLength)")
        }
        guard inputs.exaggeration == expected.exaggeration else {
            throw T3Error.prefixMismatch(reason: "built for exaggeration \(inputs.exaggeration.map { "\($0)" } ?? "none"), asked for \(expected.exaggeration.map { "\($0)" } ?? "none")")
        }
        guard inputs == expected else {
            throw T3Error.prefixMismatch(reason: "built for another voice (speaker embedding or prompt tokens differ)")
        }
    }

    /// Loads the stored positions into `cache` (empty, any batch), one block copy per row and head.
    func load(into cache: KVCache) {
        precondition((0..<cache.layers).allSatisfy { cache.length(layer: $0) == 0 }, "a prefix goes into an empty KV cache")
        for layer in 0..<layers { cache.appendBroadcast(layer: layer, keys: keys[layer], values: values[layer]) }
    }
}
