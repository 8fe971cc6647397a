/// Chatterbox Multilingual (`ChatterboxMultilingualTTS`, `ResembleAI/chatterbox`, 23 languages):
/// the original's Llama T3 with a 2454-entry grapheme vocabulary, published as torch pickles for the
/// VoiceEncoder and S3Gen, in two versions of the T3 weights (upstream's `t3_model`):
/// - `chatterbox-multilingual` is V3 (`t3_mtl23ls_v3.safetensors`, upstream 3f35dfc, recommended
///   since 65b1843): no alignment analyser, repetition penalty 1.2, and the audio of the final
///   speech token dropped (`finalTokenTrimmed`);
/// - `chatterbox-multilingual-v2` is V2 (`t3_mtl23ls_v2.safetensors`) as the pinned 0.1.7 runs it:
///   the alignment-stream analyser (`T3Config.alignmentHeads`), repetition penalty 2.0, no trim.
/// Both sample with `mtl_tts.generate`'s other defaults: temperature 0.8, cfg_weight 0.5,
/// exaggeration 0.5, min_p 0.05, top_p 1.0, 1000 new tokens.
extension ModelVariant {
    public static let chatterboxMultilingual = ModelVariant(
        name: "chatterbox-multilingual", hubRepository: "ResembleAI/chatterbox",
        voiceEncoderFile: .vePickle, t3File: .t3MultilingualV3, s3genFile: .s3genPickle,
        carried: [.tokenizerMultilingual, .condsOriginal, .cangjieTable],
        textTokenizer: .multilingualGraphemes, voiceRecipe: .chatterbox,
        samplingDefaults: T3SamplingParameters(repetitionPenalty: 1.2), finalTokenTrimmed: true, t3: .multilingual)

    public static let chatterboxMultilingualV2 = ModelVariant(
        name: "chatterbox-multilingual-v2", hubRepository: "ResembleAI/chatterbox",
        voiceEncoderFile: .vePickle, t3File: .t3Multilingual, s3genFile: .s3genPickle,
        carried: [.tokenizerMultilingual, .condsOriginal, .cangjieTable],
        textTokenizer: .multilingualGraphemes, voiceRecipe: .chatterbox,
        samplingDefaults: T3SamplingParameters(repetitionPenalty: 2.0), t3: .multilingualV2)
}

extension T3Config {
    /// `t3_mtl23ls_v3.safetensors`: the English T3 with the multilingual grapheme vocabulary.
    public static let multilingual: T3Config = {
        var config = T3Config.english
        config.textVocabularySize = 2454
        return config
    }()

    /// `t3_mtl23ls_v2.safetensors`: the same architecture, generated under 0.1.7's alignment-stream
    /// analyser (`LLAMA_ALIGNED_HEADS`).
    public static let multilingualV2: T3Config = {
        var config = T3Config.multilingual
        config.alignmentHeads = T3AlignmentStreamAnalyzer.multilingualHeads
        return config
    }()
}

extension PublishedFile {
    // ResembleAI/chatterbox, multilingual files
    public static let vePickle = PublishedFile(name: "ve.pt", size: 5_698_626, sha256: "4b16d836bc598509860f6fa068165a8bb5e9ac84f05582dfcf278a5a372879f1")
    public static let s3genPickle = PublishedFile(name: "s3gen.pt", size: 1_057_165_844, sha256: "9b9ff07e60b20c136e2b1b3d7563a24604e8d2c4c267888d1ee929dd0151d2a3")
    public static let t3Multilingual = PublishedFile(name: "t3_mtl23ls_v2.safetensors", size: 2_143_989_752, sha256: "b1237586127ce98e7800a68e49938eb5092846862aabcb6e17b2fda7889a6c75")
    /// V3's identity could not be read when it was added (no hub access): unpinned, at most twice
    /// V2's size (the same architecture in f32 has V2's size).
    public static let t3MultilingualV3 = PublishedFile.unpinned("t3_mtl23ls_v3.safetensors", sizeLimit: 2 * t3Multilingual.sizeLimit)
    /// Two revisions are published: the one pinned by public manifests (a copy is in shared/assets)
    /// and a later 22-byte-shorter one now on the hub; both have the same 2454-entry vocabulary.
    public static let tokenizerMultilingual = PublishedFile(name: "grapheme_mtl_merged_expanded_v1.json", identities: [
        FileIdentity(size: 70_011, sha256: "df81a7ca7c31796cbe97f7a7142d5a53b12e88e12417ebe98f66602cafaf0461"),
        FileIdentity(size: 69_989, sha256: "69632f47220a788a52ce2661d096453c5655e9bf25289d89a8d832c46ee07dbf"),
    ])
    /// The Cangjie table the Chinese preprocessing reads (`ChineseCangjieConverter`), downloaded with
    /// the model as upstream's list has it. Optional, as upstream treats it: without it upstream logs
    /// a warning and passes Chinese characters through.
    public static let cangjieTable = PublishedFile(name: "Cangjie5_TC.json", size: 1_920_163,
                                                   sha256: "7073fd9de919443ae88e0bd2449917a65fe54898a4413ed1edcc4b67f28bce8c")
        .optional()
}
