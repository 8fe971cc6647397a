/// The Chatterbox model families, where their upstream checkpoints live on the Hugging Face hub,
/// and the published identity (size, sha256) of every file we download.
public enum ModelFamily: String, Sendable, CaseIterable, Codable {
    case chatterbox = "chatterbox"
    case chatterboxTurbo = "chatterbox-turbo"
    case chatterboxMultilingual = "chatterbox-multilingual"

    /// The hub repository.
    public var repository: String {
        switch self {
        case .chatterbox, .chatterboxMultilingual: "ResembleAI/chatterbox"
        case .chatterboxTurbo: "ResembleAI/chatterbox-turbo"
        }
    }

    /// Files of the upstream checkpoint directory this family needs, with their published identities.
    public var files: [PublishedFile] {
        switch self {
        case .chatterbox:
            [PublishedFile.ve, .t3Original, .s3gen, .tokenizerEnglish, .condsOriginal]
        case .chatterboxTurbo:
            [PublishedFile.ve, .t3Turbo, .s3genMeanflow, .condsTurbo, .vocab, .merges, .addedTokens,
             .specialTokensMap, .tokenizerConfig]
        case .chatterboxMultilingual:
            [PublishedFile.vePickle, .t3Multilingual, .s3genPickle, .tokenizerMultilingual, .condsOriginal]
        }
    }
}

/// Size and sha256 of one published revision of a file.
public struct FileIdentity: Sendable, Hashable, Codable {
    public let size: Int
    public let sha256: String

    public init(size: Int, sha256: String) {
        self.size = size
        self.sha256 = sha256
    }
}

/// One upstream file as published: its name in the repository and the identities (size, sha256)
/// of the revisions we accept, the one we were built against first.
public struct PublishedFile: Sendable, Hashable, Codable {
    public let name: String
    public let identities: [FileIdentity]

    public init(name: String, identities: [FileIdentity]) {
        self.name = name
        self.identities = identities
    }

    init(name: String, size: Int, sha256: String) {
        self.init(name: name, identities: [FileIdentity(size: size, sha256: sha256)])
    }

    /// The identity a file with this size and hash matches, if any.
    public func matches(size: Int, sha256: String) -> Bool {
        identities.contains { $0.size == size && $0.sha256 == sha256.lowercased() }
    }

    // ResembleAI/chatterbox
    public static let ve = PublishedFile(name: "ve.safetensors", size: 5_695_784, sha256: "f0921cab452fa278bc25cd23ffd59d36f816d7dc5181dd1bef9751a7fb61f63c")
    public static let t3Original = PublishedFile(name: "t3_cfg.safetensors", size: 2_129_653_744, sha256: "914cb1696f47527fe8852ca8f1fe1fa63cb34f76f9c715e84e067b744dd0da81")
    public static let s3gen = PublishedFile(name: "s3gen.safetensors", size: 1_056_484_620, sha256: "2b78103c654207393955e4900aac14a12de8ef25f4b09424f1ef91941f161d4e")
    public static let condsOriginal = PublishedFile(name: "conds.pt", size: 107_374, sha256: "6552d70568833628ba019c6b03459e77fe71ca197d5c560cef9411bee9d87f4e")
    public static let tokenizerEnglish = PublishedFile(name: "tokenizer.json", size: 25_470, sha256: "d71e3a44eabb1784df9a68e9f95b251ecbf1a7af6a9f50835856b2ca9d8c14a5")
    public static let vePickle = PublishedFile(name: "ve.pt", size: 5_698_626, sha256: "4b16d836bc598509860f6fa068165a8bb5e9ac84f05582dfcf278a5a372879f1")
    public static let s3genPickle = PublishedFile(name: "s3gen.pt", size: 1_057_165_844, sha256: "9b9ff07e60b20c136e2b1b3d7563a24604e8d2c4c267888d1ee929dd0151d2a3")
    public static let t3Multilingual = PublishedFile(name: "t3_mtl23ls_v2.safetensors", size: 2_143_989_752, sha256: "b1237586127ce98e7800a68e49938eb5092846862aabcb6e17b2fda7889a6c75")
    /// Two revisions are published: the one pinned by public manifests (a copy is in shared/assets)
    /// and a later 22-byte-shorter one now on the hub; both have the same 2454-entry vocabulary.
    public static let tokenizerMultilingual = PublishedFile(name: "grapheme_mtl_merged_expanded_v1.json", identities: [
        FileIdentity(size: 70_011, sha256: "df81a7ca7c31796cbe97f7a7142d5a53b12e88e12417ebe98f66602cafaf0461"),
        FileIdentity(size: 69_989, sha256: "69632f47220a788a52ce2661d096453c5655e9bf25289d89a8d832c46ee07dbf"),
    ])

    // ResembleAI/chatterbox-turbo
    public static let t3Turbo = PublishedFile(name: "t3_turbo_v1.safetensors", size: 1_915_480_052, sha256: "fcf1f8c1d651bb7e3acd69ee5be269b4ac10c02980b7708213d598bc9f7cdf87")
    public static let s3genMeanflow = PublishedFile(name: "s3gen_meanflow.safetensors", size: 1_064_875_036, sha256: "d65cb687a2ed581ee6cc297e919ffefa63386944f42364ae13b78a594945514f")
    public static let condsTurbo = PublishedFile(name: "conds.pt", size: 169_454, sha256: "b1852099306fd6a7814eb9d0bd10186caba7249596cc23868f78a0eefbfa5033")
    public static let vocab = PublishedFile(name: "vocab.json", size: 999_186, sha256: "f6bd25a65e4e63ca31360e9fb11c7e4f9a391a78385d640acd814092dd6eee4f")
    public static let merges = PublishedFile(name: "merges.txt", size: 456_318, sha256: "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
    public static let addedTokens = PublishedFile(name: "added_tokens.json", size: 418, sha256: "72e4ab6acb0d9309ac3df4b526ae5fd80a2da5bc5ab7bb02d85096a374f69193")
    public static let specialTokensMap = PublishedFile(name: "special_tokens_map.json", size: 470, sha256: "92ba8063bf40aa163eadebbfe0de07c2aebe44cf0d4a9e8726580b0781fd2640")
    public static let tokenizerConfig = PublishedFile(name: "tokenizer_config.json", size: 3_878, sha256: "bca16a2ac1ddbd78b8d6228f0031884cc74b6ea54b967d6f6d2ebae9ccde23e6")
}
