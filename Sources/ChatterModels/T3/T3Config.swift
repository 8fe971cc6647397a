import ChatterTensor

/// The transformer inside T3 (upstream `LLAMA_CONFIGS[hp.llama_config_name]`).
///
/// The backbone also decides the inference procedure, as upstream's callers do: Llama models run
/// `T3.inference` (CFG, BOS fed twice, repetition penalty first), GPT-2 (Turbo) runs
/// `T3.inference_turbo` (one row, one BOS, temperature → top-k → top-p → repetition penalty).
public enum T3Backbone: Sendable, Equatable, Codable {
    /// Llama: RMSNorm, llama3-scaled rotary positions, SiLU-gated MLP, no biases.
    case llama
    /// GPT-2 (`GPT2Model`): LayerNorm, learned absolute positions `wpe` over the whole sequence
    /// (conditioning included) with `maxPositions` rows, fused qkv `Conv1D`, gelu_new MLP, biases.
    case gpt2(maxPositions: Int)
}

/// Hyper-parameters of a T3 model: Llama backbone (the original English Chatterbox and, with a
/// different text vocabulary, the multilingual one) or GPT-2 (Turbo). Mirrors upstream `T3Config`
/// plus the backbone's `LLAMA_CONFIGS` entry and the perceiver's constructor defaults.
public struct T3Config: Sendable, Equatable, Codable {
    public var backbone: T3Backbone
    // Backbone sizes (upstream `Llama_520M` / `GPT2_medium`).
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var ropeScaling: Llama3RopeScaling?

    // Vocabularies and special ids.
    public var textVocabularySize: Int
    public var speechVocabularySize: Int
    public var startTextToken: Int
    public var stopTextToken: Int
    public var startSpeechToken: Int
    public var stopSpeechToken: Int
    /// Text tokens allowed between the start and stop tokens (the text position table has this + 2 rows).
    public var maxTextTokens: Int
    /// The speech position table has this + 4 rows.
    public var maxSpeechTokens: Int

    // Conditioning.
    public var speakerEmbeddingSize: Int
    public var perceiverQueries: Int
    public var perceiverHeads: Int
    public var layerNormEps: Float
    /// `hp.input_pos_emb == "learned"`: text and speech position tables (absent in Turbo).
    public var learnedTokenPositions: Bool
    /// `hp.use_perceiver_resampler`: the prompt's speech embeddings go through the perceiver
    /// (otherwise they enter the conditioning as they are, one vector per prompt token).
    public var perceiverResampler: Bool
    /// `hp.emotion_adv`: an exaggeration vector ends the conditioning.
    public var emotionConditioning: Bool
    /// `hp.speech_cond_prompt_len`: prompt speech tokens the conditionals are made with.
    public var speechPromptLength: Int
    /// The heads an alignment-stream analyser reads (`T3AlignmentStreamAnalyzer`; multilingual V2,
    /// as 0.1.7's `T3.inference` runs it); nil: generation runs without one (every other model).
    public var alignmentHeads: [T3AttentionHead]?

    public init(backbone: T3Backbone = .llama, hiddenSize: Int, layers: Int, heads: Int, headDim: Int, intermediateSize: Int,
                rmsNormEps: Float = 1e-5, ropeTheta: Float = 500_000, ropeScaling: Llama3RopeScaling? = Llama3RopeScaling(),
                textVocabularySize: Int, speechVocabularySize: Int,
                startTextToken: Int = 255, stopTextToken: Int = 0, startSpeechToken: Int = 6561, stopSpeechToken: Int = 6562,
                maxTextTokens: Int = 2048, maxSpeechTokens: Int = 4096,
                speakerEmbeddingSize: Int = 256, perceiverQueries: Int = 32, perceiverHeads: Int = 4, layerNormEps: Float = 1e-5,
                learnedTokenPositions: Bool = true, perceiverResampler: Bool = true, emotionConditioning: Bool = true,
                speechPromptLength: Int = 150, alignmentHeads: [T3AttentionHead]? = nil) {
        self.backbone = backbone
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.headDim = headDim
        self.intermediateSize = intermediateSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.textVocabularySize = textVocabularySize
        self.speechVocabularySize = speechVocabularySize
        self.startTextToken = startTextToken
        self.stopTextToken = stopTextToken
        self.startSpeechToken = startSpeechToken
        self.stopSpeechToken = stopSpeechToken
        self.maxTextTokens = maxTextTokens
        self.maxSpeechTokens = maxSpeechTokens
        self.speakerEmbeddingSize = speakerEmbeddingSize
        self.perceiverQueries = perceiverQueries
        self.perceiverHeads = perceiverHeads
        self.layerNormEps = layerNormEps
        self.learnedTokenPositions = learnedTokenPositions
        self.perceiverResampler = perceiverResampler
        self.emotionConditioning = emotionConditioning
        self.speechPromptLength = speechPromptLength
        self.alignmentHeads = alignmentHeads
    }

    /// The original English checkpoint (`t3_cfg.safetensors`): Llama_520M, 704 text ids, 8194 speech ids.
    public static let english = T3Config(hiddenSize: 1024, layers: 30, heads: 16, headDim: 64, intermediateSize: 4096,
                                         textVocabularySize: 704, speechVocabularySize: 8194)

    /// The Turbo checkpoint (`t3_turbo_v1.safetensors`, `tts_turbo.py`): GPT2_medium (24 layers,
    /// 16 heads of 64, inner 4096, 8196 positions), 50276 text ids (GPT-2 BPE + 19 tags), 6563
    /// speech ids, no position tables, perceiver or exaggeration; 375 prompt tokens. Text tokens go
    /// in as the tokenizer gives them (no 255 … 0 wrapper; `inference_turbo` never checks for one);
    /// at most 1024 of them, the tokenizer's `model_max_length` (upstream truncates silently with
    /// `truncation=True`; we refuse longer text instead).
    public static let turbo = T3Config(backbone: .gpt2(maxPositions: 8196), hiddenSize: 1024, layers: 24, heads: 16, headDim: 64,
                                       intermediateSize: 4096, textVocabularySize: 50276, speechVocabularySize: 6563,
                                       maxTextTokens: 1024, learnedTokenPositions: false, perceiverResampler: false, emotionConditioning: false,
                                       speechPromptLength: 375)

    /// Rows of the learned text position table (`text_pos_emb.emb.weight`).
    public var textPositions: Int { maxTextTokens + 2 }
    /// Rows of the learned speech position table (`speech_pos_emb.emb.weight`).
    public var speechPositions: Int { maxSpeechTokens + 4 }
    /// The most speech tokens one utterance may ask for (`max_new_tokens`): the speech position
    /// table's rows less the start token's (original), the backbone's positions (Turbo; the prefill
    /// shares them, which `T3Decoder` checks once the prefill length is known).
    public var maxGeneratedTokens: Int {
        if case let .gpt2(maxPositions) = backbone { return maxPositions }
        return speechPositions - 1
    }
    /// Conditioning vectors: speaker, the prompt (perceiver queries, or one per prompt token), emotion.
    public func conditioningLength(promptTokens: Int) -> Int {
        let prompt = promptTokens == 0 ? 0 : (perceiverResampler ? perceiverQueries : promptTokens)
        return 1 + prompt + (emotionConditioning ? 1 : 0)
    }
}

extension T3Config {
    /// The config of the T3 weights in `weights`, sizes read from the tensor shapes: GPT-2 (Turbo)
    /// when `tfmr.wpe.weight` is present, otherwise Llama. Head count and the speech start/stop ids
    /// cannot be read from shapes and are given (the real checkpoints: 16, 6561, 6562).
    public static func inferred(from weights: some WeightStore, heads: Int = 16, startSpeechToken: Int = 6561,
                                stopSpeechToken: Int = 6562) throws -> T3Config {
        try inferred(from: weights, heads: heads, startSpeechToken: startSpeechToken, stopSpeechToken: stopSpeechToken,
                     gpt2Defaults: .turbo)
    }

    /// The config of the T3 weights in `weights` for a model published as `family` (a family's
    /// `ModelVariant.t3`): sizes from the tensor shapes, and what shapes cannot tell (head count,
    /// speech start/stop ids, the alignment heads; for GPT-2 the text limit and the prompt length) from `family`.
    public static func inferred(from weights: some WeightStore, like family: T3Config) throws -> T3Config {
        var config = try inferred(from: weights, heads: family.heads, startSpeechToken: family.startSpeechToken,
                                  stopSpeechToken: family.stopSpeechToken, gpt2Defaults: family.backbone == .llama ? .turbo : family)
        config.alignmentHeads = family.alignmentHeads
        return config
    }

    private static func inferred(from weights: some WeightStore, heads: Int, startSpeechToken: Int, stopSpeechToken: Int,
                                 gpt2Defaults: T3Config) throws -> T3Config {
        func shape(_ key: String) throws -> [Int] { try weights.tensor(key).shape }
        func count(_ key: (Int) -> String) -> Int {
            var n = 0
            while weights.contains(key(n)) { n += 1 }
            return n
        }
        func headDim(_ hidden: Int) throws -> Int {
            guard heads > 0, hidden % heads == 0 else {
                throw T3Error.invalidParameter(name: "heads", value: Double(heads), reason: "must divide the hidden size \(hidden)")
            }
            return hidden / heads
        }
        let text = try shape("text_emb.weight"), speech = try shape("speech_emb.weight")
        let speaker = try shape("cond_enc.spkr_enc.weight")[1]
        if weights.contains("tfmr.wpe.weight") {
            let positions = try shape("tfmr.wpe.weight"), hidden = positions[1]
            return T3Config(backbone: .gpt2(maxPositions: positions[0]), hiddenSize: hidden,
                            layers: count { "tfmr.h.\($0).ln_1.weight" }, heads: heads, headDim: try headDim(hidden),
                            intermediateSize: try shape("tfmr.h.0.mlp.c_fc.bias")[0], textVocabularySize: text[0],
                            speechVocabularySize: speech[0], startSpeechToken: startSpeechToken, stopSpeechToken: stopSpeechToken,
                            maxTextTokens: gpt2Defaults.maxTextTokens, speakerEmbeddingSize: speaker, learnedTokenPositions: false,
                            perceiverResampler: false, emotionConditioning: false, speechPromptLength: gpt2Defaults.speechPromptLength)
        }
        let hidden = try shape("tfmr.norm.weight")[0]
        return T3Config(hiddenSize: hidden, layers: count { "tfmr.layers.\($0).input_layernorm.weight" }, heads: heads,
                        headDim: try headDim(hidden), intermediateSize: try shape("tfmr.layers.0.mlp.up_proj.weight")[0],
                        textVocabularySize: text[0], speechVocabularySize: speech[0],
                        startSpeechToken: startSpeechToken, stopSpeechToken: stopSpeechToken,
                        maxTextTokens: try shape("text_pos_emb.emb.weight")[0] - 2,
                        maxSpeechTokens: try shape("speech_pos_emb.emb.weight")[0] - 4, speakerEmbeddingSize: speaker,
                        perceiverQueries: try shape("cond_enc.perceiver.pre_attention_query")[1])
    }
}
