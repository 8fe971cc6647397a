import Foundation

/// The Chatterbox Multilingual text tokenizer, upstream's `MTLTokenizer.encode`
/// (`chatterbox/models/tokenizers/tokenizer.py`, identical in 0.1.7, used with the V2 T3, and in
/// 5de7a54, used with V3), step by step:
/// 1. Python `str.lower()`, then `unicodedata.normalize("NFKD")` (`PythonText`);
/// 2. the language's own step: `zh` spacy-pkuseg segmentation and Cangjie coding (`ChineseCangjieConverter`), `ja` kanji → hiragana
///    (a `LanguageTextProcessor` handed in by the caller), `ko` jamo decomposition
///    (`KoreanJamoDecomposition`); `he` diacritics and `ru` stress marks need packages that upstream
///    declares optional (dicta_onnx, russian_text_stresser) and its default install lacks, so they
///    are skipped exactly as upstream skips them: warn, pass the text through;
/// 3. the tag `[xx]` prepended when a language is given;
/// 4. every ASCII space → `[SPACE]`;
/// 5. the HF pipeline of `grapheme_mtl_merged_expanded_v1.json` (added tokens, `Whitespace`, BPE;
///    `BPETokenizer`). No `[START]` / `[STOP]`: `T3TokenIterator` adds them.
///
/// Where a processor's data is missing, upstream logs and passes the characters through; so does
/// this tokenizer, once per message through its `TextProcessingLog`.
public struct MultilingualTokenizer: Sendable {
    /// The tokenizer file's name in a model directory.
    public static let fileName = PublishedFile.tokenizerMultilingual.name
    /// The languages it accepts: upstream `SUPPORTED_LANGUAGES`.
    public static let languages = SpokenLanguage.multilingual

    public let bpe: BPETokenizer
    /// The language steps this tokenizer runs, by language code.
    let processors: [String: any LanguageTextProcessor]
    /// Why a language that upstream processes has no processor here, by language code.
    let skipped: [String: String]
    public let log: TextProcessingLog

    /// Loads the tokenizer and the Cangjie table (`Cangjie5_TC.json`, when present) from a model
    /// `directory`. `japanese` is upstream's `hiragana_normalize`; without it Japanese text passes
    /// through, as upstream without pykakasi. `chineseSegmenter` is spacy-pkuseg's `cut`; without it
    /// Chinese text is coded unsegmented, as upstream without spacy-pkuseg.
    public init(directory: URL, japanese: (any LanguageTextProcessor)? = nil, chineseSegmenter: LazyPkusegSegmenter? = nil,
                log: TextProcessingLog = TextProcessingLog()) throws {
        let bpe = try BPETokenizer(contentsOf: directory.appendingPathComponent(Self.fileName))
        let table = directory.appendingPathComponent(ChineseCangjieConverter.fileName)
        let chinese: ChineseCangjieConverter? = FileManager.default.fileExists(atPath: table.path)
            ? try ChineseCangjieConverter(contentsOf: table, segmenter: chineseSegmenter, log: log) : nil
        try self.init(bpe: bpe, chinese: chinese, japanese: japanese, chineseSegmenter: chineseSegmenter, log: log)
    }

    /// `chinese` nil: no Cangjie table, Chinese characters pass through (upstream's failed download),
    /// segmented by `chineseSegmenter` when given (a `chinese` converter brings its own).
    public init(bpe: BPETokenizer, chinese: ChineseCangjieConverter?, japanese: (any LanguageTextProcessor)?,
                chineseSegmenter: LazyPkusegSegmenter? = nil, log: TextProcessingLog = TextProcessingLog()) throws {
        for token in ["[START]", "[STOP]", EnglishTokenizer.spaceToken] + Self.languages.map(Self.tag) where bpe.id(of: token) == nil {
            throw TokenizerError.corrupt(path: bpe.path, reason: "the vocabulary has no \(token) token")
        }
        var processors: [String: any LanguageTextProcessor] = ["ko": KoreanJamoDecomposition()]
        var skipped = [
            "he": "dicta_onnx not available - Hebrew text processing skipped (an optional upstream package, absent from its default install)",
            "ru": "russian_text_stresser not available - Russian stress labeling skipped (an optional upstream package, absent from its default install)",
        ]
        if let japanese {
            processors["ja"] = japanese
        } else {
            skipped["ja"] = "pykakasi not available - Japanese text processing skipped (no kanji dictionary: run tools/kakasi/fetch-dictionaries.sh, or set \(KakasiDictionaryLocation.environmentVariable) to a folder holding pykakasi 2.3.0's dictionaries)"
        }
        if let chinese {
            processors["zh"] = chinese
        } else {
            processors["zh"] = ChineseCangjieConverter(withoutTableLoggingTo: log, segmenter: chineseSegmenter)
            skipped["zh"] = "Could not load Cangjie mapping (\(ChineseCangjieConverter.fileName) is not in the model directory) - Chinese characters pass through uncoded"
        }
        self.bpe = bpe
        self.processors = processors
        self.skipped = skipped
        self.log = log
    }

    static func tag(_ language: SpokenLanguage) -> String { "[\(language.code)]" }

    /// `MTLTokenizer.encode(text, language_id)`: raw ids, no `punc_norm`, no start/stop tokens.
    /// `language` nil or empty: no language step and no tag, as upstream with `language_id=None`.
    public func encode(_ text: String, language: String?) throws(UnsupportedLanguage) -> [Int] {
        let language = try SpokenLanguage.resolve(language, among: Self.languages)
        var prepared = PythonText.nfkd(PythonText.lowercased(text))
        if let language {
            if let reason = skipped[language.code] { log.warnOnce(reason) }
            if let processor = processors[language.code] { prepared = processor.process(prepared) }
            prepared = Self.tag(language) + prepared
        }
        return bpe.encode(EnglishTokenizer.replacingSpaces(prepared))
    }
}

extension MultilingualTokenizer: TextTokenizer {
    public var languages: [SpokenLanguage] { Self.languages }

    /// `mtl_tts.punc_norm`: the original's, with the CJK sentence enders `、，。？！` besides `. ! ? - ,`.
    public func normalize(_ text: String) -> String { TextNormalization.multilingualPuncNorm(text) }
}
