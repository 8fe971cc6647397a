import Foundation

/// A model family's text front end: its `punc_norm` and its tokenizer. The streaming layer holds one
/// per model and hands `t3Input(for:)` to `T3TokenIterator` (which adds the start/stop text tokens
/// itself where the model has them).
public protocol TextTokenizer: Sendable {
    /// The family's `punc_norm`.
    func normalize(_ text: String) -> String
    /// The tokenizer's raw ids (upstream `encode` / `tokenizer(text).input_ids`).
    func encode(_ text: String) -> [Int]
}

extension TextTokenizer {
    /// `encode(normalize(text))`: the text ids `generate` passes on, before any start/stop tokens.
    public func t3Input(for text: String) -> [Int] { encode(normalize(text)) }
}

extension EnglishTokenizer: TextTokenizer {
    public func normalize(_ text: String) -> String { TextNormalization.puncNorm(text) }
}

extension TurboTokenizer: TextTokenizer {
    public func normalize(_ text: String) -> String { TextNormalization.turboPuncNorm(text) }
}

/// A family's text front end, by kind (`ModelVariant.textTokenizer`).
public enum TextTokenizerKind: Sendable, Equatable {
    /// The original's English BPE (`tokenizer.json`) with `punc_norm`.
    case english
    /// Turbo's GPT-2 BPE (`vocab.json`, `merges.txt`, `added_tokens.json`) with its `punc_norm`.
    case gpt2
    /// The multilingual grapheme tokenizer (`grapheme_mtl_merged_expanded_v1.json`): not in this build.
    case multilingualGraphemes

    /// The tokenizer of this kind in a converted (or upstream) model `directory`.
    public func load(directory: URL) throws -> any TextTokenizer {
        switch self {
        case .english: try EnglishTokenizer(contentsOf: directory.appendingPathComponent(EnglishTokenizer.fileName))
        case .gpt2: try TurboTokenizer(directory: directory)
        case .multilingualGraphemes:
            throw TokenizerError.unsupported(path: directory.appendingPathComponent(PublishedFile.tokenizerMultilingual.name).path,
                                             feature: "the multilingual grapheme tokenizer (not in this build)")
        }
    }
}

/// Loading a text front end.
public enum TextTokenizers {
    /// The tokenizer of `family` in a converted (or upstream) model `directory`.
    public static func load(directory: URL, for family: ModelVariant) throws -> any TextTokenizer {
        try family.textTokenizer.load(directory: directory)
    }

    /// The tokenizer found at `location`: a Turbo directory (it holds `vocab.json`), or the English
    /// `tokenizer.json` / a directory holding it.
    public static func load(at location: URL) throws -> any TextTokenizer {
        let vocabulary = location.appendingPathComponent(TurboTokenizer.vocabularyFileName)
        if FileManager.default.fileExists(atPath: vocabulary.path) { return try TurboTokenizer(directory: location) }
        return try EnglishTokenizer(contentsOf: location)
    }
}
