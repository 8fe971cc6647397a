/// Chatterbox Turbo (`ChatterboxTurboTTS`, `ResembleAI/chatterbox-turbo`): GPT-2 medium T3 run by
/// `inference_turbo` (one row, no guidance), S3Gen with the meanflow decoder, GPT-2's BPE tokenizer
/// plus 19 tags, three S3GEN_SIL tokens after each utterance.
extension ModelVariant {
    public static let chatterboxTurbo = ModelVariant(
        name: "chatterbox-turbo", hubRepository: "ResembleAI/chatterbox-turbo",
        voiceEncoderFile: .ve, t3File: .t3Turbo, s3genFile: .s3genMeanflow,
        carried: [.condsTurbo, .vocab, .merges, .addedTokens, .specialTokensMap, .tokenizerConfig],
        textTokenizer: .gpt2, voiceRecipe: .chatterboxTurbo, samplingDefaults: .turbo, trailingSilenceTokens: 3, t3: .turbo)
}

extension ConditionalsBuilder.Recipe {
    /// `ChatterboxTurboTTS` (`speech_cond_prompt_len` 375 set in `from_local`).
    public static let chatterboxTurbo = ConditionalsBuilder.Recipe(t3PromptTokens: 375, t3PromptSeconds: 15, s3genPromptSeconds: 10,
                                                                   targetLoudnessLUFS: -27, minimumSeconds: 5)
}

extension PublishedFile {
    // ResembleAI/chatterbox-turbo (`ve.safetensors` is the original's).
    public static let t3Turbo = PublishedFile(name: "t3_turbo_v1.safetensors", size: 1_915_480_052, sha256: "fcf1f8c1d651bb7e3acd69ee5be269b4ac10c02980b7708213d598bc9f7cdf87")
    public static let s3genMeanflow = PublishedFile(name: "s3gen_meanflow.safetensors", size: 1_064_875_036, sha256: "d65cb687a2ed581ee6cc297e919ffefa63386944f42364ae13b78a594945514f")
    public static let condsTurbo = PublishedFile(name: "conds.pt", size: 169_454, sha256: "b1852099306fd6a7814eb9d0bd10186caba7249596cc23868f78a0eefbfa5033")
    public static let vocab = PublishedFile(name: "vocab.json", size: 999_186, sha256: "f6bd25a65e4e63ca31360e9fb11c7e4f9a391a78385d640acd814092dd6eee4f")
    public static let merges = PublishedFile(name: "merges.txt", size: 456_318, sha256: "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
    public static let addedTokens = PublishedFile(name: "added_tokens.json", size: 418, sha256: "72e4ab6acb0d9309ac3df4b526ae5fd80a2da5bc5ab7bb02d85096a374f69193")
    public static let specialTokensMap = PublishedFile(name: "special_tokens_map.json", size: 470, sha256: "92ba8063bf40aa163eadebbfe0de07c2aebe44cf0d4a9e8726580b0781fd2640")
    public static let tokenizerConfig = PublishedFile(name: "tokenizer_config.json", size: 3_878, sha256: "bca16a2ac1ddbd78b8d6228f0031884cc74b6ea54b967d6f6d2ebae9ccde23e6")
}
