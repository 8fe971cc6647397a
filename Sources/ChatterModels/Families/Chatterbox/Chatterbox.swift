/// The original English Chatterbox (`ChatterboxTTS`, `ResembleAI/chatterbox`): Llama_520M T3 with
/// classifier-free guidance, S3Gen with the standard CFM decoder, the English BPE tokenizer.
extension ModelVariant {
    public static let chatterbox = ModelVariant(
        name: "chatterbox", hubRepository: "ResembleAI/chatterbox",
        voiceEncoderFile: .ve, t3File: .t3Original, s3genFile: .s3gen, carried: [.tokenizerEnglish, .condsOriginal],
        textTokenizer: .english, voiceRecipe: .chatterbox, samplingDefaults: T3SamplingParameters(), t3: .english)
}

extension ConditionalsBuilder.Recipe {
    /// `ChatterboxTTS` (and `ChatterboxMultilingualTTS`, which prepares conditionals the same way).
    public static let chatterbox = ConditionalsBuilder.Recipe(t3PromptTokens: 150, t3PromptSeconds: 6, s3genPromptSeconds: 10,
                                                              targetLoudnessLUFS: nil, minimumSeconds: nil)
}

extension PublishedFile {
    // ResembleAI/chatterbox
    public static let ve = PublishedFile(name: "ve.safetensors", size: 5_695_784, sha256: "f0921cab452fa278bc25cd23ffd59d36f816d7dc5181dd1bef9751a7fb61f63c")
    public static let t3Original = PublishedFile(name: "t3_cfg.safetensors", size: 2_129_653_744, sha256: "914cb1696f47527fe8852ca8f1fe1fa63cb34f76f9c715e84e067b744dd0da81")
    public static let s3gen = PublishedFile(name: "s3gen.safetensors", size: 1_056_484_620, sha256: "2b78103c654207393955e4900aac14a12de8ef25f4b09424f1ef91941f161d4e")
    public static let condsOriginal = PublishedFile(name: "conds.pt", size: 107_374, sha256: "6552d70568833628ba019c6b03459e77fe71ca197d5c560cef9411bee9d87f4e")
    public static let tokenizerEnglish = PublishedFile(name: "tokenizer.json", size: 25_470, sha256: "d71e3a44eabb1784df9a68e9f95b251ecbf1a7af6a9f50835856b2ca9d8c14a5")
}
