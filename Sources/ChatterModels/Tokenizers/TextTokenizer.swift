import Foundation

/// A model family's text front end: its `punc_norm` and its tokenizer. The streaming layer holds one
/// per model and hands `t3Input(for:language:)` to `T3TokenIterator` (which adds the start/stop text
/// tokens itself where the model has them).
public protocol TextTokenizer: Sendable {
    /// The languages `encode(_:language:)` accepts (English only, or upstream's 23).
    var languages: [SpokenLanguage] { get }
    /// The family's `punc_norm`.
    func normalize(_ text: String) -> String
    /// The tokenizer's raw ids (upstream `encode` / `tokenizer(text).input_ids`) for text in `language`
    /// (an ISO 639-1 code, compared as upstream after `str.lower()`; nil or empty: none given).
    /// A language outside `languages` is refused with the list.
    func encode(_ text: String, language: String?) throws(UnsupportedLanguage) -> [Int]
}

extension TextTokenizer {
    /// `encode(normalize(text), language:)`: the text ids `generate` passes on, before any start/stop tokens.
    public func t3Input(for text: String, language: String? = nil) throws(UnsupportedLanguage) -> [Int] {
        try encode(normalize(text), language: language)
    }
}

/// The single-language tokenizers speak English; upstream's `generate` takes no language, so naming
/// none or English is the same text, and any other language is refused.
extension EnglishTokenizer: TextTokenizer {
    public var languages: [SpokenLanguage] { [.english] }
    public func normalize(_ text: String) -> String { TextNormalization.puncNorm(text) }
    public func encode(_ text: String, language: String?) throws(UnsupportedLanguage) -> [Int] {
        _ = try SpokenLanguage.resolve(language, among: languages)
        return encode(text)
    }
}

extension TurboTokenizer: TextTokenizer {
    public var languages: [SpokenLanguage] { [.english] }
    public func normalize(_ text: String) -> String { TextNormalization.turboPuncNorm(text) }
    public func encode(_ text: String, language: String?) throws(UnsupportedLanguage) -> [Int] {
        _ = try SpokenLanguage.resolve(language, among: languages)
        return encode(text)
    }
}

/// A family's text front end, by kind (`ModelVariant.textTokenizer`).
public enum TextTokenizerKind: Sendable, Equatable {
    /// The original's English BPE (`tokenizer.json`) with `punc_norm`.
    case english
    /// Turbo's GPT-2 BPE (`vocab.json`, `merges.txt`, `added_tokens.json`) with its `punc_norm`.
    case gpt2
    /// The multilingual grapheme tokenizer (`grapheme_mtl_merged_expanded_v1.json`, `Cangjie5_TC.json`)
    /// with its `punc_norm`.
    case multilingualGraphemes

    /// The tokenizer of this kind in a converted (or upstream) model `directory`. The multilingual
    /// one reads pykakasi's dictionaries on its first Japanese text, from where
    /// `KakasiDictionaryLocation` finds them (`cacheRoot`: the model store's, `$HF_HOME/chatterstream`),
    /// and spacy-pkuseg's model on its first Chinese text, from where `PkusegModelLocation` finds it;
    /// without them Japanese passes through and Chinese is coded unsegmented, each with a warning, as
    /// upstream without pykakasi or spacy-pkuseg.
    public func load(directory: URL, cacheRoot: URL? = nil) throws -> any TextTokenizer {
        switch self {
        case .english: return try EnglishTokenizer(contentsOf: directory.appendingPathComponent(EnglishTokenizer.fileName))
        case .gpt2: return try TurboTokenizer(directory: directory)
        case .multilingualGraphemes:
            let log = TextProcessingLog()
            return try MultilingualTokenizer(directory: directory,
                                             japanese: LazyJapaneseHiraganaNormalizer.installed(cacheRoot: cacheRoot, log: log),
                                             chineseSegmenter: LazyPkusegSegmenter.installed(cacheRoot: cacheRoot, log: log), log: log)
        }
    }
}

/// Loading a text front end.
public enum TextTokenizers {
    /// The tokenizer of `family` in a converted (or upstream) model `directory`.
    public static func load(directory: URL, for family: ModelVariant) throws -> any TextTokenizer {
        try family.textTokenizer.load(directory: directory)
    }

    /// The tokenizer found at `location`: a Turbo directory (it holds `vocab.json`), the multilingual
    /// `grapheme_mtl_merged_expanded_v1.json` / a directory holding it (with `Cangjie5_TC.json` beside
    /// it when present), or the English `tokenizer.json` / a directory holding it.
    public static func load(at location: URL) throws -> any TextTokenizer {
        let vocabulary = location.appendingPathComponent(TurboTokenizer.vocabularyFileName)
        if FileManager.default.fileExists(atPath: vocabulary.path) { return try TurboTokenizer(directory: location) }
        if location.lastPathComponent == MultilingualTokenizer.fileName {
            return try TextTokenizerKind.multilingualGraphemes.load(directory: location.deletingLastPathComponent())
        }
        if FileManager.default.fileExists(atPath: location.appendingPathComponent(MultilingualTokenizer.fileName).path) {
            return try TextTokenizerKind.multilingualGraphemes.load(directory: location)
        }
        return try EnglishTokenizer(contentsOf: location)
    }
}
