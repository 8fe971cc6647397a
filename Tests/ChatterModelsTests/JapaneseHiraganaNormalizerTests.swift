import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Upstream parity of the multilingual tokenizer's Japanese step, `hiragana_normalize` with
/// pykakasi 2.3.0, against `Tests/Fixtures/tokenizers/chatterbox_multilingual_ja.jsonl`
/// (tools/fixtures/fixturegen/tokenizers_ja.py), with the real dictionaries fetched by
/// tools/kakasi/fetch-dictionaries.sh; plus the converter's quirks, bad dictionaries and the
/// pass-through without dictionaries on small hand-built pickles that need no download.
@Suite struct JapaneseHiraganaNormalizerTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixture = repository.appendingPathComponent("Tests/Fixtures/tokenizers/chatterbox_multilingual_ja.jsonl")
    static let dictionaries = KakasiDictionaryLocation.locate(cacheRoot: nil, workingDirectory: repository)

    /// Loaded once for the suite: the kanwa dictionary is 9.7 MB of pickle.
    static let realNormalizer: Result<JapaneseHiraganaNormalizer, any Error>? = dictionaries.map { directory in
        Result { try JapaneseHiraganaNormalizer(dictionaryDirectory: directory) }
    }

    @Test(.enabled(if: dictionaries != nil, "pykakasi 2.3.0's dictionaries are not installed: run tools/kakasi/fetch-dictionaries.sh first"))
    func matchesUpstreamOnEveryFixtureString() throws {
        let started = Date()
        let normalizer = try #require(Self.realNormalizer).get()
        let loadSeconds = Date().timeIntervalSince(started)
        let lines = try Data(contentsOf: Self.fixture).split(separator: UInt8(ascii: "\n"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        var count = 0, matches = 0, upstreamRaises = 0, raisesMatched = 0, changed = 0
        var failures: [String] = []
        for line in lines.dropFirst() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            let name = try #require(object["name"] as? String), text = try #require(object["text"] as? String)
            count += 1
            let ours = normalizer.normalizedOrFailure(text)
            if let expected = object["hira"] as? String {
                if expected != text { changed += 1 }
                if case let .success(output) = ours, Array(output.unicodeScalars) == Array(expected.unicodeScalars) {
                    matches += 1
                } else {
                    failures.append("\(name) \(text.debugDescription): ours \(ours) != upstream \(expected.debugDescription)")
                }
            } else {
                // pykakasi 2.3.0 raises IndexError here; ours reports it and `process` passes the text through.
                upstreamRaises += 1
                if case .failure = ours, Array(normalizer.process(text).unicodeScalars) == Array(PythonText.nfkd(text).unicodeScalars) {
                    raisesMatched += 1
                } else {
                    failures.append("\(name) \(text.debugDescription): upstream raises \(object["error"] ?? "?"), ours \(ours)")
                }
            }
        }
        print("JapaneseHiraganaNormalizerTests: \(count) strings (pykakasi \(header["pykakasi"] ?? "?"), Python \(header["python"] ?? "?")): "
            + "\(matches)/\(count - upstreamRaises) hiragana_normalize outputs identical to upstream (\(changed) differ from their input), "
            + "\(raisesMatched)/\(upstreamRaises) where pykakasi raises detected as such; dictionaries loaded in \(String(format: "%.2f", loadSeconds)) s")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
        #expect(count == header["cases"] as? Int && count >= 300)
    }

    @Test(.enabled(if: dictionaries != nil, "pykakasi 2.3.0's dictionaries are not installed: run tools/kakasi/fetch-dictionaries.sh first"))
    func realDictionarySizes() throws {
        let normalizer = try #require(Self.realNormalizer).get()
        let dictionaries = normalizer.converter.dictionaries
        let words = dictionaries.kanwa.values.reduce(0) { $0 + $1.count }
        print("kakasi dictionaries: \(dictionaries.kanwa.count) kanji tables, \(words) words, \(dictionaries.itaiji.count) itaiji, \(dictionaries.halfKana.count) half-width kana")
        #expect(dictionaries.kanwa.count == 6823 && words == 269_325)
        #expect(dictionaries.itaiji.count == 913 && dictionaries.halfKana.count == 95)
        // The one conditional reading: 色 reads しょく only after the buffered text "そん" (そん色).
        #expect(normalizer.process("そん色") == PythonText.nfkd("そんしょく"))
        #expect(normalizer.process("景色") == PythonText.nfkd("けしき"))
    }

    // MARK: - Hand-built dictionaries (no download needed)

    /// A pickle writer for the test dictionaries: the opcodes `pickle.dump` (protocol 4) uses.
    struct PickleBytes {
        var bytes: [UInt8] = [0x80, 4]
        mutating func dict() { bytes.append(0x7D) }
        mutating func list() { bytes.append(0x5D) }
        mutating func mark() { bytes.append(0x28) }
        mutating func none() { bytes.append(0x4E) }
        mutating func int(_ value: Int) { bytes += [0x4A] + withUnsafeBytes(of: Int32(value).littleEndian, Array.init) }
        mutating func string(_ text: String) {
            let utf8 = Array(text.utf8)
            bytes += [0x8C, UInt8(utf8.count)] + utf8
        }
        mutating func op(_ code: UInt8) { bytes.append(code) }
        mutating func stop() { bytes.append(0x2E) }
    }

    /// kanwa: 漢字→かんじ, 漢→かん, 花→はな, 辺→へん, 色→しょく only after "そん" else いろ; itaiji: 﨑→崎, U+FE00 dropped;
    /// half-width kana: ｰ→ー.
    static func writeSmallDictionaries(to directory: URL) throws {
        var kanwa = PickleBytes()
        kanwa.dict()
        kanwa.mark()
        for (first, words) in [(0x6F22, [("漢字", [("かんじ", nil as String?)]), ("漢", [("かん", nil)])]),
                               (0x82B1, [("花", [("はな", nil)])]), (0x8FBA, [("辺", [("へん", nil)])]),
                               (0x8272, [("色", [("しょく", "そん"), ("いろ", nil)])])] {
            kanwa.int(first)
            kanwa.dict()
            kanwa.mark()
            for (word, readings) in words {
                kanwa.string(word)
                kanwa.list()
                kanwa.mark()
                for (reading, condition) in readings {
                    kanwa.string(reading)
                    if let condition {
                        kanwa.list()
                        kanwa.string(condition)
                        kanwa.op(0x61)  // APPEND
                    } else {
                        kanwa.none()
                    }
                    kanwa.op(0x86)  // TUPLE2
                }
                kanwa.op(0x65)  // APPENDS
            }
            kanwa.op(0x75)  // SETITEMS
        }
        kanwa.op(0x75)
        kanwa.stop()
        var itaiji = PickleBytes()
        itaiji.dict()
        itaiji.mark()
        itaiji.int(0xFA11); itaiji.string("崎")
        itaiji.int(0xFE00); itaiji.none()
        itaiji.op(0x75)
        itaiji.stop()
        var halfKana = PickleBytes()
        halfKana.dict()
        halfKana.string("ｰ"); halfKana.string("ー"); halfKana.op(0x73)  // SETITEM
        halfKana.string("_max_key_len_"); halfKana.int(2); halfKana.op(0x73)
        halfKana.stop()
        try Data(kanwa.bytes).write(to: directory.appendingPathComponent("kanwadict4.db"))
        try Data(itaiji.bytes).write(to: directory.appendingPathComponent("itaijidict4.db"))
        try Data(halfKana.bytes).write(to: directory.appendingPathComponent("halfkana3.db"))
    }

    @Test func pykakasiQuirksOnASmallDictionary() throws {
        let directory = try TemporaryDirectory()
        try Self.writeSmallDictionaries(to: directory.url)
        let normalizer = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url)
        func segments(_ text: String) throws -> [String] {
            try normalizer.converter.convert(Array(text.unicodeScalars)).map { String(String.UnicodeScalarView($0.original)) + "/" + String(String.UnicodeScalarView($0.kana)) }
        }
        let cases: [(String, String)] = [
            ("漢字です", "かんじです"),  // longest word first
            ("漢です", "かんです"),
            ("花が咲く", " はなが"),  // 咲 has no reading: dropped, and く after it is skipped
            ("花\n漢", " はな\n はなかん"),  // the segment before a newline is emitted again; は gets a space
            ("花\t", " はな\t はな"),
            ("辺り", " へんり"),  // へ gets a space too
            ("漢字😀です", "かんじかんじです"),  // an emoji is dropped, and the buffer before it emitted again
            ("そん色", "そんしょく"), ("ソン色", "ソンいろ"), ("色", "いろ"),  // the condition sees the buffered text
            ("漢字ｰ", "かんじ \u{309A}"),  // ｰ joins the kanji's kana; ー−0x60 is ゜, NFKD " ゚"
            ("漢字ー", "かんじー"),
            ("漢\u{FE00}字", "かんじ"),  // the selector is dropped for the lookup and counted back into the match
            ("", ""), ("カタカナ", "カタカナ"), ("ｶﾀｶﾅ", PythonText.nfkd("ｶﾀｶﾅ")),
        ]
        for (text, expected) in cases {
            // Expected before the final NFKD, which splits voiced kana (じ → し + U+3099).
            let output = normalizer.process(text), pieces = try segments(text), expected = PythonText.nfkd(expected)
            #expect(Array(output.unicodeScalars) == Array(expected.unicodeScalars),
                    "\(text.debugDescription) → \(output.debugDescription), want \(expected.debugDescription); segments \(pieces)")
        }
        #expect(try segments("花\n") == ["花/はな", "\n/", "花/はな"])
        // An itaiji entry that expands (none in pykakasi's file) must not break the selector bookkeeping.
        var expanding = PickleBytes()
        expanding.dict()
        expanding.int(0x82B2); expanding.string("花花"); expanding.op(0x73)  // SETITEM
        expanding.stop()
        let expandingDirectory = try TemporaryDirectory()
        try Self.writeSmallDictionaries(to: expandingDirectory.url)
        try Data(expanding.bytes).write(to: expandingDirectory.path("itaijidict4.db"))
        let expandingNormalizer = try JapaneseHiraganaNormalizer(dictionaryDirectory: expandingDirectory.url)
        #expect(expandingNormalizer.process("\u{82B2}") == PythonText.nfkd(" はな"))
        // A variation selector with nothing convertible after it: pykakasi raises IndexError.
        guard case .failure = normalizer.normalizedOrFailure("か\u{FE00}") else { Issue.record("か+VS should fail as pykakasi does"); return }
        #expect(normalizer.process("か\u{FE00}") == "か\u{FE00}")
    }

    /// Measured once against Python 3.11 on every code point and 100 000 random strings of
    /// decomposable and combining code points: 0 differences (plain Foundation NFKD: 96).
    @Test func pythonUnicode14NFKD() {
        #expect(Array(PythonText.nfkd("ｶﾞ①").unicodeScalars) == Array("カ\u{3099}1".unicodeScalars))
        // U+1E030 (Unicode 15) decomposes to U+0430 in Swift's tables; Python 3.11 does not know it.
        #expect(PythonText.nfkd("\u{1E030}") == "\u{1E030}")
        #expect(Array(PythonText.nfkd("a\u{0301}\u{0323}").unicodeScalars) == Array("a\u{0323}\u{0301}".unicodeScalars))
        // A compatibility mapping that yields a combining mark is ordered with the marks around it
        // (Foundation alone leaves e U+0301 U+3099).
        #expect(Array(PythonText.nfkd("e\u{0301}\u{FF9E}").unicodeScalars) == Array("e\u{3099}\u{0301}".unicodeScalars))
    }

    // MARK: - Bad or absent dictionaries

    @Test func corruptOrMissingDictionariesAreTypedErrors() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: KakasiDictionaryError.self) { try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url) }
        try Self.writeSmallDictionaries(to: directory.url)
        _ = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url)
        let kanwa = directory.path("kanwadict4.db")
        let good = try Data(contentsOf: kanwa)
        var corruptions: [(String, Data)] = [
            ("empty", Data()), ("truncated", good.prefix(good.count / 2)), ("garbage", Data("not a pickle".utf8)),
            ("no STOP", good.dropLast()), ("class instance", Data([0x80, 4, 0x63] + Array("os\nsystem\n".utf8) + [0x2E])),
            ("top-level list", Data([0x80, 4, 0x5D, 0x2E])),
            ("invalid UTF-8", Data([0x80, 4, 0x7D, 0x4A, 0x22, 0x6F, 0, 0, 0x7D, 0x8C, 2, 0xFF, 0xFE, 0x5D, 0x73, 0x73, 0x2E])),
            ("word not under its first kanji", Data([0x80, 4, 0x7D, 0x4A, 0x22, 0x6F, 0, 0, 0x7D] + [0x8C, 3] + Array("花".utf8) + [0x5D, 0x73, 0x73, 0x2E])),
            ("string past the end", Data([0x80, 4, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E])),
            ("huge length prefix", Data([0x80, 4, 0x8D] + [UInt8](repeating: 0xFF, count: 8) + [0x2E])),
            // 100 000 lists nested in each other: refused at depth 33 rather than torn down recursively.
            ("nested 100 000 deep", Data([0x80, 4] + [UInt8](repeating: 0x5D, count: 100_000) + [UInt8](repeating: 0x61, count: 99_999) + [0x2E])),
        ]
        for cut in stride(from: 1, to: good.count, by: max(1, good.count / 40)) { corruptions.append(("cut at \(cut)", good.prefix(cut))) }
        for (label, data) in corruptions {
            try data.write(to: kanwa)
            do {
                _ = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url)
                Issue.record("\(label): a corrupt kanwadict4.db was accepted")
            } catch let error as KakasiDictionaryError {
                guard case .corrupt = error else { Issue.record("\(label): \(error) is not .corrupt"); continue }
                #expect(error.description.contains("kanwadict4.db") && error.description.contains("fetch-dictionaries.sh"), "\(error)")
            }
        }
        try FileManager.default.removeItem(at: kanwa)
        #expect {
            try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url)
        } throws: { error in
            guard case let .unreadable(path, _)? = error as? KakasiDictionaryError else { return false }
            return path.hasSuffix("kanwadict4.db")
        }
    }

    @Test func dictionaryLookup() throws {
        let empty = try TemporaryDirectory()
        // Nowhere to be found: nil, so the multilingual tokenizer passes Japanese through as upstream without pykakasi.
        #expect(try JapaneseHiraganaNormalizer.installed(cacheRoot: empty.url, environment: [:], workingDirectory: empty.url) == nil)
        #expect(KakasiDictionaryLocation.candidates(cacheRoot: empty.url, environment: [KakasiDictionaryLocation.environmentVariable: "/x"],
                                                    workingDirectory: empty.url).map(\.path)
                == ["/x", empty.path(KakasiDictionaryLocation.cacheSubdirectory).path, empty.path(".cache/kakasi/pykakasi-2.3.0").path])
        // An explicit folder without the files is an error, not a silent fallback.
        #expect(throws: KakasiDictionaryError.self) {
            try JapaneseHiraganaNormalizer.installed(cacheRoot: nil, environment: [KakasiDictionaryLocation.environmentVariable: empty.url.path],
                                                     workingDirectory: empty.url)
        }
        // Found in the cache root, then in .cache/ under the working directory.
        let cached = empty.path(KakasiDictionaryLocation.cacheSubdirectory)
        try FileManager.default.createDirectory(at: cached, withIntermediateDirectories: true)
        try Self.writeSmallDictionaries(to: cached)
        let normalizer = try #require(try JapaneseHiraganaNormalizer.installed(cacheRoot: empty.url, environment: [:], workingDirectory: empty.url))
        #expect(normalizer.process("漢字") == PythonText.nfkd("かんじ"))
        #expect(KakasiDictionaryLocation.locate(cacheRoot: nil, environment: [:], workingDirectory: empty.url) == nil)
        let working = empty.path(".cache/kakasi")
        try FileManager.default.createDirectory(at: working, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: cached, to: working.appendingPathComponent("pykakasi-2.3.0"))
        #expect(KakasiDictionaryLocation.locate(cacheRoot: nil, environment: [:], workingDirectory: empty.url)?.standardizedFileURL.path
                == empty.path(".cache/kakasi/pykakasi-2.3.0").standardizedFileURL.path)
    }

    /// The multilingual tokenizer's protocol: the normalizer is its `ja` step.
    @Test func isTheTokenizersJapaneseStep() throws {
        let directory = try TemporaryDirectory()
        try Self.writeSmallDictionaries(to: directory.url)
        let step: any LanguageTextProcessor = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory.url)
        #expect(step.process("辺") == PythonText.nfkd(" へん"))
    }

    /// What a model directory's tokenizer does with Japanese: the dictionaries found at load time are
    /// read on the first Japanese text (not at load), and give what the eager normalizer gives; a
    /// dictionary that turns out corrupt then is logged once, naming the fix, and the text passes
    /// through; none found is upstream without pykakasi.
    @Test func modelDirectoryTokenizerReadsTheDictionariesOnFirstJapaneseText() throws {
        let root = try TemporaryDirectory()
        let cached = root.path(KakasiDictionaryLocation.cacheSubdirectory)
        try FileManager.default.createDirectory(at: cached, withIntermediateDirectories: true)
        try Self.writeSmallDictionaries(to: cached)
        let log = TextProcessingLog(sink: { _ in })
        let lazy = try #require(LazyJapaneseHiraganaNormalizer.installed(cacheRoot: root.url, log: log, environment: [:], workingDirectory: root.url))
        let eager = try JapaneseHiraganaNormalizer(dictionaryDirectory: cached)
        let assets = MultilingualTokenizerTests.tokenizerDirectory
        let viaLazy = try MultilingualTokenizer(directory: assets, japanese: lazy, log: log)
        let viaEager = try MultilingualTokenizer(directory: assets, japanese: eager, log: log)
        for text in ["漢字と花", "そん色のない辺り", "カタカナ ｰ"] {
            #expect(try viaLazy.encode(text, language: "ja") == viaEager.encode(text, language: "ja"), "\(text)")
        }
        #expect(log.messages.isEmpty)
        #expect(LazyJapaneseHiraganaNormalizer.installed(cacheRoot: nil, log: log, environment: [:], workingDirectory: root.url) == nil)

        // Corrupt when first read: logged once with the fix, then passed through.
        let corrupt = try TemporaryDirectory()
        for name in ["kanwadict4.db", "itaijidict4.db", "halfkana3.db"] { try Data("not a pickle".utf8).write(to: corrupt.path(name)) }
        let messages = TextProcessingLog(sink: { _ in })
        let broken = try #require(LazyJapaneseHiraganaNormalizer.installed(
            cacheRoot: nil, log: messages, environment: [KakasiDictionaryLocation.environmentVariable: corrupt.url.path], workingDirectory: root.url))
        #expect(broken.process("漢字") == "漢字" && broken.process("花") == "花")
        #expect(messages.messages.count == 1 && messages.messages.first?.contains("fetch-dictionaries.sh") == true, "\(messages.messages)")
    }
}
