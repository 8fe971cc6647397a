/// Chatterbox-Nano (`ChatterboxTurboTTS(nano=True)`, `ResembleAI/chatterbox-nano`, upstream 5de7a54):
/// Turbo's architecture with a GPT-2 *small* T3 (`GPT2_small`: 12 layers, 12 heads of 64, inner
/// 3072, 8196 positions) in `t3_nano_v1.safetensors`; the same meanflow S3Gen, VoiceEncoder, GPT-2
/// tokenizer files and built-in-voice layout, `inference_turbo`, sampling defaults and three
/// S3GEN_SIL tokens. Its T3 runs Turbo's procedure (`T3Config.procedure`: a GPT-2 backbone), so the
/// family needs nothing outside this folder.
extension ModelVariant {
    public static let chatterboxNano = ModelVariant(
        name: "chatterbox-nano", hubRepository: "ResembleAI/chatterbox-nano",
        voiceEncoderFile: .veNano, t3File: .t3Nano, s3genFile: .s3genMeanflowNano,
        carried: [.condsNano, .vocabNano, .mergesNano, .addedTokensNano, .specialTokensMapNano, .tokenizerConfigNano],
        textTokenizer: .gpt2, voiceRecipe: .chatterboxTurbo, samplingDefaults: .turbo, trailingSilenceTokens: 3, t3: .nano)
}

extension T3Config {
    /// `t3_nano_v1.safetensors` as `tts_turbo.from_local(nano=True)` builds it: Turbo's overrides
    /// (50276 text ids, 6563 speech ids, no position tables, perceiver or emotion input, 375 prompt
    /// tokens) on upstream's `GPT2_SMALL_CONFIG` (n_embd 768, n_layer 12, n_head 12, n_positions
    /// 8196; inner size GPT-2's default 4 × 768). The head count is the config's: the weights
    /// cannot tell 12 heads of 64 from 16 of 48.
    public static let nano = T3Config(backbone: .gpt2(maxPositions: 8196), hiddenSize: 768, layers: 12, heads: 12, headDim: 64,
                                      intermediateSize: 3072, textVocabularySize: 50276, speechVocabularySize: 6563,
                                      maxTextTokens: 1024, learnedTokenPositions: false, perceiverResampler: false,
                                      emotionConditioning: false, speechPromptLength: 375)
}

extension PublishedFile {
    // ResembleAI/chatterbox-nano. `from_pretrained(nano=True)` downloads `*.safetensors, *.json,
    // *.txt, *.pt, *.model` and `from_local` reads exactly these names (the T3 file is Nano's own,
    // the rest are named as Turbo's). Their sizes and sha256 could not be read when this family was
    // added (no hub access), so they are unpinned: accepted as first downloaded, and recorded. The
    // limits: the T3 file at most Turbo's (GPT-2 small is smaller than medium in any dtype), each
    // other file at most twice Turbo's file of the same name.
    public static let t3Nano = PublishedFile.unpinned("t3_nano_v1.safetensors", sizeLimit: PublishedFile.t3Turbo.sizeLimit)
    public static let veNano = unpinned(like: .ve)
    public static let s3genMeanflowNano = unpinned(like: .s3genMeanflow)
    public static let condsNano = unpinned(like: .condsTurbo)
    public static let vocabNano = unpinned(like: .vocab)
    public static let mergesNano = unpinned(like: .merges)
    public static let addedTokensNano = unpinned(like: .addedTokens)
    public static let specialTokensMapNano = unpinned(like: .specialTokensMap)
    public static let tokenizerConfigNano = unpinned(like: .tokenizerConfig)

    /// The file named as `turbo`, unpinned, up to twice its size.
    private static func unpinned(like turbo: PublishedFile) -> PublishedFile {
        .unpinned(turbo.name, sizeLimit: 2 * turbo.sizeLimit)
    }
}
