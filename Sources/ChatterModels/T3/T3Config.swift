import ChatterTensor

/// Hyper-parameters of a T3 model with a Llama backbone (the original English Chatterbox and, with a
/// different text vocabulary, the multilingual one). Mirrors upstream `T3Config` plus the backbone's
/// `LLAMA_CONFIGS` entry and the perceiver's constructor defaults.
public struct T3Config: Sendable, Equatable, Codable {
    // Backbone (upstream `Llama_520M`).
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

    public init(hiddenSize: Int, layers: Int, heads: Int, headDim: Int, intermediateSize: Int,
                rmsNormEps: Float = 1e-5, ropeTheta: Float = 500_000, ropeScaling: Llama3RopeScaling? = Llama3RopeScaling(),
                textVocabularySize: Int, speechVocabularySize: Int,
                startTextToken: Int = 255, stopTextToken: Int = 0, startSpeechToken: Int = 6561, stopSpeechToken: Int = 6562,
                maxTextTokens: Int = 2048, maxSpeechTokens: Int = 4096,
                speakerEmbeddingSize: Int = 256, perceiverQueries: Int = 32, perceiverHeads: Int = 4, layerNormEps: Float = 1e-5) {
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
    }

    /// The original English checkpoint (`t3_cfg.safetensors`): Llama_520M, 704 text ids, 8194 speech ids.
    public static let english = T3Config(hiddenSize: 1024, layers: 30, heads: 16, headDim: 64, intermediateSize: 4096,
                                         textVocabularySize: 704, speechVocabularySize: 8194)

    /// Rows of the learned text position table (`text_pos_emb.emb.weight`).
    public var textPositions: Int { maxTextTokens + 2 }
    /// Rows of the learned speech position table (`speech_pos_emb.emb.weight`).
    public var speechPositions: Int { maxSpeechTokens + 4 }
    /// Conditioning vectors: speaker, perceiver queries, emotion (with a prompt; 2 without).
    public func conditioningLength(promptTokens: Int) -> Int { promptTokens > 0 ? perceiverQueries + 2 : 2 }
}
