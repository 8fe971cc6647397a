import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Upstream parity of Chatterbox Multilingual's text front end: `mtl_tts.punc_norm` and
/// `MTLTokenizer.encode` (chatterbox-tts 0.1.7; the same in 5de7a54), against
/// `Tests/Fixtures/tokenizers/chatterbox_multilingual.jsonl` (tools/fixtures/fixturegen/tokenizers_mtl.py):
/// every language but Japanese, Korean jamo, Chinese Cangjie with a synthetic table and without one,
/// each with spacy-pkuseg's segmentation (the small model of `Tests/Assets/pkuseg/synthetic`) and without.
@Suite struct MultilingualTokenizerTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let tokenizerDirectory = tests.appendingPathComponent("Assets/tokenizers/chatterbox-multilingual")
    static let fixture = tests.appendingPathComponent("Fixtures/tokenizers/chatterbox_multilingual.jsonl")
    static let cangjieTable = tests.appendingPathComponent("Fixtures/tokenizers/cangjie_synthetic.json")
    /// The words of spacy-pkuseg's `default.pkl` that the fixture's Chinese texts hold (tokenizers_pkuseg.py).
    static let pkusegWords = tests.appendingPathComponent("Fixtures/tokenizers/pkuseg_words_mtl.pkl")

    static func tokenizer(cangjie: Bool, pkuseg: Bool = false, log: TextProcessingLog = TextProcessingLog(sink: { _ in })) throws -> MultilingualTokenizer {
        let bpe = try BPETokenizer(contentsOf: tokenizerDirectory.appendingPathComponent(MultilingualTokenizer.fileName))
        let segmenter = pkuseg ? LazyPkusegSegmenter(try PkusegSegmenter(model: PkusegSegmenterTests.model(), wordList: PkusegWordList(contentsOf: pkusegWords))) : nil
        return try MultilingualTokenizer(bpe: bpe, chinese: cangjie ? try ChineseCangjieConverter(contentsOf: cangjieTable, segmenter: segmenter, log: log) : nil,
                                         japanese: nil, chineseSegmenter: segmenter, log: log)
    }

    @Test func matchesUpstreamOnEveryFixtureString() throws {
        let withTable = try Self.tokenizer(cangjie: true), withoutTable = try Self.tokenizer(cangjie: false)
        let tokenizers = ["chinese_no_table": withoutTable, "chinese_pkuseg": try Self.tokenizer(cangjie: true, pkuseg: true),
                          "chinese_pkuseg_no_table": try Self.tokenizer(cangjie: false, pkuseg: true)]
        #expect(withTable.bpe.vocabularySize == 2454)
        let lines = try Data(contentsOf: Self.fixture).split(separator: UInt8(ascii: "\n"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        var counts: [String: Int] = [:], idMatches = 0, normMatches = 0, normIDMatches = 0
        var languages = Set<String>(), failures: [String] = []
        for line in lines.dropFirst() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            let path = try #require(object["path"] as? String), text = try #require(object["text"] as? String)
            let language = object["lang"] as? String
            let name = "\(path)\(counts[path, default: 0])"
            counts[path, default: 0] += 1
            let tokenizer = tokenizers[path] ?? withTable
            let ids = try tokenizer.encode(text, language: language), expected = try #require(object["ids"] as? [Int])
            if ids == expected { idMatches += 1 } else {
                failures.append("\(name) [\(language ?? "-")] encode \(text.debugDescription): \(ids) != \(expected)")
            }
            let normed = tokenizer.normalize(text), expectedNorm = try #require(object["punc_norm"] as? String)
            if Array(normed.unicodeScalars) == Array(expectedNorm.unicodeScalars) { normMatches += 1 } else {
                failures.append("\(name) punc_norm: \(normed.debugDescription) != \(expectedNorm.debugDescription)")
            }
            let normIDs = try tokenizer.t3Input(for: text, language: language)
            if normIDs == (try #require(object["punc_norm_ids"] as? [Int])) { normIDMatches += 1 } else {
                failures.append("\(name) [\(language ?? "-")] encode(punc_norm) \(normed.debugDescription): \(normIDs)")
            }
            if let language { languages.insert(PythonText.lowercased(language)) }
        }
        let count = counts.values.reduce(0, +)
        print("MultilingualTokenizerTests: \(count) strings (tokenizers \(header["tokenizers"] ?? "?"), Python \(header["python"] ?? "?")), "
            + "per path \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")): "
            + "encode \(idMatches)/\(count), punc_norm \(normMatches)/\(count), encode(punc_norm) \(normIDMatches)/\(count) identical to upstream")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
        #expect(count == header["cases"] as? Int)
        for path in ["plain", "korean", "chinese"] { #expect(counts[path, default: 0] >= 300, "\(path): \(counts[path, default: 0]) strings") }
        #expect(counts["chinese_pkuseg", default: 0] >= 200)
        for path in ["chinese_no_table", "chinese_pkuseg_no_table"] { #expect(counts[path, default: 0] > 0) }
        let untested = Set(SpokenLanguage.multilingual.map(\.code)).subtracting(languages)
        #expect(untested == ["ja"], "every language but Japanese is in the fixture; missing: \(untested.sorted())")
    }

    @Test func unsupportedLanguageIsATypedErrorListingTheLanguages() throws {
        let tokenizer = try Self.tokenizer(cangjie: false)
        #expect(throws: UnsupportedLanguage(code: "xx", supported: SpokenLanguage.multilingual)) { try tokenizer.encode("hi", language: "xx") }
        do {
            _ = try tokenizer.encode("hi", language: "pt-BR")
            Issue.record("pt-BR was accepted")
        } catch {
            #expect(error.description.contains("'pt-BR'") && error.description.contains("zh (Chinese)") && error.description.contains("ar (Arabic)"),
                    "\(error.description)")
        }
        // As upstream's generate: compared after str.lower(); nil and "" name no language (no tag).
        #expect(try tokenizer.encode("hi", language: "FR") == (try tokenizer.encode("hi", language: "fr")))
        #expect(try tokenizer.encode("hi", language: "") == (try tokenizer.encode("hi", language: nil)))
        #expect(try tokenizer.encode("hi", language: "fr").first == tokenizer.bpe.id(of: "[fr]"))
        #expect(SpokenLanguage.multilingual.count == 23 && Set(SpokenLanguage.multilingual.map(\.code)).count == 23)
        // The single-language tokenizers speak English only: none or "en" is the same text.
        let english = try EnglishTokenizer(contentsOf: Self.tests.appendingPathComponent("Fixtures/tokenizers/chatterbox-en/tokenizer.json"))
        #expect(try english.encode("Hello there", language: "EN") == english.encode("Hello there"))
        #expect(throws: UnsupportedLanguage(code: "fr", supported: [.english])) { try english.t3Input(for: "Bonjour", language: "fr") }
    }

    @Test func missingProcessingIsLoggedOncePerLanguageAndPassedThrough() throws {
        let collected = Collected()
        let log = TextProcessingLog(sink: { collected.append($0) })
        let tokenizer = try Self.tokenizer(cangjie: false, log: log)
        let plain = try tokenizer.encode("שלום", language: nil)
        for _ in 0..<3 { #expect(try tokenizer.encode("שלום", language: "he").dropFirst() == plain[...]) }
        _ = try tokenizer.encode("привет", language: "ru")
        // Japanese without its processor: the text is only lowercased and NFKD'd, as upstream without pykakasi.
        let japaneseTag = try #require(tokenizer.bpe.id(of: "[ja]"))
        #expect(try tokenizer.encode("カタカナ", language: "ja") == [japaneseTag] + (try tokenizer.encode("カタカナ", language: nil)))
        // Chinese without the table: characters pass through (each an [UNK] or its own grapheme).
        #expect(try tokenizer.encode("中文", language: "zh").dropFirst() == (try tokenizer.encode("中文", language: nil))[...])
        let messages = collected.messages
        #expect(messages.count == 5, "\(messages)")
        for needle in ["dicta_onnx", "russian_text_stresser", "pykakasi", "Cangjie", "pkuseg"] {
            #expect(messages.contains { $0.contains(needle) }, "no warning mentions \(needle): \(messages)")
        }
    }

    @Test func cangjieTableFormatAndErrors() throws {
        // Shared codes get the word's first position on its code as a suffix; a repeated word keeps its last code.
        let table = #"["日\tab", "月\tab", "木\tab", "月\tab", "水\tcd", "水\tef\textra", "火山\tef", "火\tef", "，\tzz"]"#
        let converter = try ChineseCangjieConverter(json: Data(table.utf8), path: "table")
        #expect(converter.process("日月木水火，") == "[cj_a][cj_b][cj_.][cj_a][cj_b][cj_1][cj_.][cj_a][cj_b][cj_2][cj_.]"
            + "[cj_e][cj_f][cj_.][cj_e][cj_f][cj_2][cj_.]，")
        #expect(throws: TokenizerError.corrupt(path: "t", reason: "entry 1 has no tab between word and code")) {
            try ChineseCangjieConverter(json: Data(#"["日\tab", "月"]"#.utf8), path: "t")
        }
        #expect(throws: TokenizerError.corrupt(path: "t", reason: "the top level is not a JSON array")) {
            try ChineseCangjieConverter(json: Data(#"{"日": "ab"}"#.utf8), path: "t")
        }
        #expect(throws: TokenizerError.self) { try ChineseCangjieConverter(contentsOf: URL(fileURLWithPath: "/nonexistent/Cangjie5_TC.json")) }
        // A model directory without the tokenizer file is an error naming it.
        #expect(throws: TokenizerError.self) { try MultilingualTokenizer(directory: URL(fileURLWithPath: "/nonexistent")) }
    }

    @Test func loadsFromAModelDirectoryWithItsCangjieTable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mtl-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(at: Self.tokenizerDirectory.appendingPathComponent(MultilingualTokenizer.fileName),
                                         to: directory.appendingPathComponent(MultilingualTokenizer.fileName))
        #expect(try TextTokenizers.load(at: directory) is MultilingualTokenizer)
        let withoutTable = try TextTokenizerKind.multilingualGraphemes.load(directory: directory)
        try FileManager.default.copyItem(at: Self.cangjieTable, to: directory.appendingPathComponent(ChineseCangjieConverter.fileName))
        let loaded = try TextTokenizerKind.multilingualGraphemes.load(directory: directory)
        // The loader also segments with spacy-pkuseg's model when one is installed (.cache/pkuseg, or
        // CHATTERSTREAM_PKUSEG_MODEL); the reference does what it finds.
        let silent = TextProcessingLog(sink: { _ in })
        let reference = try MultilingualTokenizer(
            bpe: BPETokenizer(contentsOf: Self.tokenizerDirectory.appendingPathComponent(MultilingualTokenizer.fileName)),
            chinese: ChineseCangjieConverter(contentsOf: Self.cangjieTable, segmenter: LazyPkusegSegmenter.installed(cacheRoot: nil, log: silent), log: silent),
            japanese: nil, log: silent)
        let text = "我爱北京天安门。"
        #expect(try loaded.t3Input(for: text, language: "zh") == (try reference.t3Input(for: text, language: "zh")))
        #expect(try withoutTable.t3Input(for: text, language: "zh") != (try reference.t3Input(for: text, language: "zh")))
        #expect(try TextTokenizers.load(at: directory.appendingPathComponent(MultilingualTokenizer.fileName)) is MultilingualTokenizer)
    }

    @Test func pythonLowercaseAndNFKD() {
        // Cases where Swift's own tables or rules differ from Python 3.11's.
        #expect(PythonText.lowercased("ΟΔΟΣ ΣΑΣ Σ") == "οδος σας σ")  // Final_Sigma; Swift's lowercased() gives σ
        #expect(PythonText.lowercased("Α\u{301}Σ.") == "α\u{301}ς.")
        #expect(Array(PythonText.lowercased("İ").unicodeScalars) == ["i", "\u{307}"])
        #expect(PythonText.lowercased("ẞ") == "ß")
        #expect(Array(PythonText.nfkd("a\u{301}\u{323}").unicodeScalars) == ["a", "\u{323}", "\u{301}"])  // reordered
        #expect(Array(PythonText.nfkd("ﬁ½각").unicodeScalars) == ["f", "i", "1", "\u{2044}", "2", "\u{1100}", "\u{1161}", "\u{11A8}"])
        #expect(PythonText.stripped("\u{3000} a b\u{1C}\n") == "a b")
        #expect(KoreanJamoDecomposition().process(" \u{D7A4}\u{D7AF} ") == "\u{1113}\u{1161}\u{1113}\u{1161}\u{11B2}")
    }
}

/// Messages a `TextProcessingLog` sink received.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [String] = []
    func append(_ message: String) {
        lock.lock()
        received.append(message)
        lock.unlock()
    }
    var messages: [String] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }
}
