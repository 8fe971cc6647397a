import ChatterTensor
import Synchronization

/// Source of `T3.instanceID`s (process-wide, never reused).
private let t3InstanceCounter = Atomic<UInt64>(0)

/// T3, the speech-token language model: conditioning, text and speech embeddings, a Llama
/// (original, multilingual) or GPT-2 (Turbo) backbone over a KV cache, and the speech head.
///
/// Llama models run over `[conditioning | text | BOS | BOS]` with classifier-free guidance (two rows
/// per weight pass); Turbo over `[conditioning | text | BOS]`, one row, no guidance.
///
/// Weights are read by their upstream state-dict names (`tfmr.layers.0.self_attn.q_proj.weight`,
/// `tfmr.h.0.attn.c_attn.weight`, …). `tfmr.embed_tokens.weight`, `tfmr.wte.weight` and
/// `text_head.weight` are never read.
public final class T3: @unchecked Sendable {
    public let config: T3Config
    /// Unique to this instance for the life of the process: state derived from one model's weights
    /// (a `T3PrefixState`) records it, so that it is never used with another model, even one of the
    /// same config (other weights, another precision). An object address could be reused once freed.
    public let instanceID: UInt64
    /// How this backbone is driven (`T3.inference` or `T3.inference_turbo`), from `config.backbone`.
    public let procedure: any T3Procedure
    /// The backbone's blocks and final norm (`procedure.loadStack`: `LlamaStack`, `GPT2Stack`).
    let stack: any T3Stack
    /// `speech_head` (GPT-2: with a bias; upstream `nn.Linear(..., bias=self.is_gpt)`).
    let speechHead: Linear
    let textEmbedding: EmbeddingTable
    let speechEmbedding: EmbeddingTable
    /// Learned text / speech position tables (`hp.input_pos_emb == "learned"`; nil in Turbo).
    let textPositions: EmbeddingTable?
    let speechPositions: EmbeddingTable?
    let conditionEncoder: T3ConditionEncoder

    /// Builds T3 from `weights`; without a `config`, the family and sizes are read from the weight
    /// shapes (`T3Config.inferred`: a converted or upstream Turbo file gives `.turbo`, the original
    /// checkpoint `.english`).
    public init(weights: some WeightStore, config: T3Config? = nil) throws {
        let config = try config ?? T3Config.inferred(from: weights)
        self.config = config
        procedure = config.procedure
        instanceID = t3InstanceCounter.add(1, ordering: .relaxed).newValue
        let d = config.hiddenSize
        stack = try procedure.loadStack(weights: weights, config: config)
        // Upstream: `nn.Linear(..., bias=self.is_gpt)`.
        speechHead = try Linear(weights, "speech_head.", out: config.speechVocabularySize, in: d, bias: config.backbone != .llama,
                                format: .kernelNative)
        textEmbedding = EmbeddingTable(try weights.tensor("text_emb.weight", shape: [config.textVocabularySize, d]))
        speechEmbedding = EmbeddingTable(try weights.tensor("speech_emb.weight", shape: [config.speechVocabularySize, d]))
        if config.learnedTokenPositions {
            textPositions = EmbeddingTable(try weights.tensor("text_pos_emb.emb.weight", shape: [config.textPositions, d]))
            speechPositions = EmbeddingTable(try weights.tensor("speech_pos_emb.emb.weight", shape: [config.speechPositions, d]))
        } else {
            textPositions = nil
            speechPositions = nil
        }
        conditionEncoder = try T3ConditionEncoder(weights: weights.scoped("cond_enc."), config: config)
    }

    /// The Llama blocks (empty for GPT-2), for inspection in tests.
    var llamaBlocks: [LlamaBlock] { (stack as? LlamaStack)?.blocks ?? [] }
    /// The GPT-2 blocks (empty for Llama), for inspection in tests.
    var gpt2Blocks: [GPT2Block] { (stack as? GPT2Stack)?.blocks ?? [] }

    /// Positions the backbone can hold: prefill plus generated tokens (GPT-2's `wpe` rows; Llama's
    /// rotary positions are unbounded, its speech position table bounds generation instead).
    public var maxSequenceLength: Int { stack.maxSequenceLength }

    // MARK: Embeddings

    /// Rows `ids` of `table` [V, D] plus rows `positions` of `positionTable` (each optional), [n, D].
    func gather(_ table: EmbeddingTable?, _ ids: [Int], plus positionTable: EmbeddingTable?, _ positions: [Int]) -> Tensor {
        let d = config.hiddenSize, n = max(ids.count, positions.count)
        let result = Tensor(zeros: [n, d])
        result.withUnsafeMutableFloats { out in
            let base = out.baseAddress!
            if let table { for (r, id) in ids.enumerated() { table.read(row: id, into: base + r * d) } }
            if let positionTable {
                for (r, pos) in positions.enumerated() { positionTable.read(row: pos, into: base + r * d, accumulate: true) }
            }
        }
        return result
    }

    /// The conditioning vectors [len_cond, D]: speaker projection; the prompt speech tokens'
    /// embeddings (Llama: plus learned speech positions 0…P−1, through the perceiver; GPT-2: as they
    /// are); the exaggeration projection (where the model has one; `exaggeration` is then unused).
    public func conditioning(speakerEmbedding: [Float], promptTokens: [Int], exaggeration: Float) throws -> Tensor {
        guard speakerEmbedding.count == config.speakerEmbeddingSize else {
            throw T3Error.speakerEmbeddingSize(expected: config.speakerEmbeddingSize, actual: speakerEmbedding.count)
        }
        let promptLimit = config.learnedTokenPositions ? config.speechPositions : maxSequenceLength
        guard promptTokens.count <= promptLimit else {
            throw T3Error.promptTooLong(count: promptTokens.count, limit: promptLimit)
        }
        for token in promptTokens where token < 0 || token >= config.speechVocabularySize {
            throw T3Error.tokenOutOfRange(kind: "prompt speech", token: token, vocabularySize: config.speechVocabularySize)
        }
        guard exaggeration.isFinite else {
            throw T3Error.invalidParameter(name: "exaggeration", value: Double(exaggeration), reason: "must be finite")
        }
        let speaker = Tensor(shape: [1, config.speakerEmbeddingSize], scalars: speakerEmbedding)
        let prompt = gather(speechEmbedding, promptTokens, plus: procedure.promptHasSpeechPositions ? speechPositions : nil, Array(promptTokens.indices))
        return conditionEncoder(speakerEmbedding: speaker, promptEmbeddings: prompt, exaggeration: exaggeration)
    }

    /// The text ids the model reads, checking length and range: Llama models wrap the tokenizer's
    /// ids in the start/stop text tokens (`_ensure_BOT_EOT`); Turbo reads them as they are (`procedure`).
    public func wrapText(_ textTokens: [Int]) throws -> [Int] {
        guard !textTokens.isEmpty else { throw T3Error.emptyText }
        guard textTokens.count <= config.maxTextTokens else {
            throw T3Error.textTooLong(count: textTokens.count, limit: config.maxTextTokens)
        }
        for token in textTokens where token < 0 || token >= config.textVocabularySize {
            throw T3Error.tokenOutOfRange(kind: "text", token: token, vocabularySize: config.textVocabularySize)
        }
        return procedure.wrap(textTokens: textTokens, config: config)
    }

    /// The prefill input [B, T0, D] (B = 2 with CFG, else 1):
    /// `[cond | text_emb[ids] + text_pos | bos | bos]`, the second row with zeroed text token
    /// embeddings (text positions kept), as `T3.prepare_input_embeds` + `T3.inference`; Turbo
    /// (`inference_turbo`): `[cond | text_emb[ids] | speech_emb[start_speech]]`, one row (the
    /// backbone adds `wpe` itself).
    public func prefillEmbeddings(conditioning: Tensor, wrappedText: [Int], classifierFree: Bool) -> Tensor {
        concatenate(prefillSuffixRows(wrappedText: wrappedText, classifierFree: classifierFree)
            .map { concatenate([conditioning, $0], axis: 0).unsqueezed(0) }, axis: 0)
    }

    /// The prefill input after the conditioning rows, [B, T0 − len_cond, D]: what a decoder that
    /// starts from a `T3PrefixState` runs the backbone over. Nothing in it depends on the conditioning.
    public func prefillSuffixEmbeddings(wrappedText: [Int], classifierFree: Bool) -> Tensor {
        concatenate(prefillSuffixRows(wrappedText: wrappedText, classifierFree: classifierFree).map { $0.unsqueezed(0) }, axis: 0)
    }

    /// Each batch row's prefill rows after the conditioning, [T0 − len_cond, D] each.
    private func prefillSuffixRows(wrappedText: [Int], classifierFree: Bool) -> [Tensor] {
        procedure.prefillSuffixRows(model: self, wrappedText: wrappedText, classifierFree: classifierFree)
    }

    /// `speech_emb[token] + speech_pos_emb[speechPosition]`, [1, D].
    func speechStepEmbedding(token: Int, speechPosition: Int) -> Tensor {
        gather(speechEmbedding, [token], plus: speechPositions, [speechPosition])
    }

    // MARK: Backbone

    /// Runs the backbone over `embeddings` [B, T, D] (positions continue from the cache), returning
    /// the post-final-norm hidden states [B, T, D]; `observe` collects attention probabilities of
    /// (layer, head) pairs for batch row 0, the last `observedQueries` query tokens (Llama only).
    func backbone(_ embeddings: Tensor, cache: KVCache, observe: [T3AttentionHead] = [], observedQueries: Int = 1,
                  probabilities: inout [T3AttentionHead: [Float]]) -> Tensor {
        stack.forward(embeddings, cache: cache, observe: observe, observedQueries: observedQueries, probabilities: &probabilities)
    }

    /// One decode step over `scratch.hidden` [B, 1, D] (the fed token's embedding, overwritten),
    /// leaving the logits in `scratch.logits` [B, V]: no allocation unless heads are observed.
    func decodeBackbone(scratch: T3DecodeScratch, cache: KVCache, observe: [T3AttentionHead],
                        probabilities: inout [T3AttentionHead: [Float]]) {
        stack.decode(scratch: scratch, cache: cache, observe: observe, probabilities: &probabilities)
        speechHead.decode(scratch.norm.reshaped([scratch.norm.shape[0], config.hiddenSize]), into: scratch.logits)
    }

    /// Writes `speech_emb[token] + speech_pos_emb[speechPosition]` (Turbo: `speech_emb[token]`)
    /// into every row of `output` [B, 1, D].
    func writeSpeechStepEmbedding(token: Int, speechPosition: Int, into output: Tensor) {
        let d = config.hiddenSize, rows = output.shape[0]
        output.withUnsafeMutableFloats { out in
            speechEmbedding.read(row: token, into: out.baseAddress!)
            speechPositions?.read(row: speechPosition, into: out.baseAddress!, accumulate: true)
            for r in 1..<max(rows, 1) { for j in 0..<d { out[r * d + j] = out[j] } }
        }
    }

    /// Speech logits [B, V] of the last position of `hidden` [B, T, D].
    func lastLogits(_ hidden: Tensor) -> Tensor {
        let t = hidden.shape[1]
        return speechHead(hidden.slice(1, (t - 1)..<t).contiguous().reshaped([hidden.shape[0], hidden.shape[2]]))
    }

    /// A KV cache for `batch` rows and `capacity` positions, storing keys and values in `precision`.
    public func makeCache(batch: Int, capacity: Int, precision: KVCache.Precision = .f32) -> KVCache {
        KVCache(layers: config.layers, batch: batch, heads: config.heads, capacity: capacity, headDim: config.headDim,
                precision: precision)
    }
}

/// A (layer, head) pair of the backbone whose attention probabilities are observed (0-based).
public struct T3AttentionHead: Hashable, Sendable, Codable {
    public var layer: Int
    public var head: Int
    public init(layer: Int, head: Int) {
        self.layer = layer
        self.head = head
    }
}
