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

/// Loading the text front end that belongs with a T3 model.
public enum TextTokenizers {
    /// The tokenizer in a converted (or upstream) model `directory` for a model of `config`:
    /// Turbo's GPT-2 files for a GPT-2 backbone, otherwise the English `tokenizer.json`.
    public static func load(directory: URL, for config: T3Config) throws -> any TextTokenizer {
        config.isTurbo ? try TurboTokenizer(directory: directory) : try EnglishTokenizer(contentsOf: directory)
    }

    /// The tokenizer found at `location`: a Turbo directory (it holds `vocab.json`), or the English
    /// `tokenizer.json` / a directory holding it.
    public static func load(at location: URL) throws -> any TextTokenizer {
        let vocabulary = location.appendingPathComponent(TurboTokenizer.vocabularyFileName)
        if FileManager.default.fileExists(atPath: vocabulary.path) { return try TurboTokenizer(directory: location) }
        return try EnglishTokenizer(contentsOf: location)
    }
}
