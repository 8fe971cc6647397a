import Foundation
import Testing
@testable import ChatterModels

/// Upstream parity of the original (English) text front end: `punc_norm` and `EnTokenizer.encode`,
/// against `Tests/Fixtures/tokenizers/chatterbox_en.jsonl` (tools/fixtures/fixturegen/tokenizers_en.py).
@Suite struct EnglishTokenizerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("tokenizers")
    static let tokenizerDirectory = fixtures.appendingPathComponent("chatterbox-en")
    static let tokenizerFile = tokenizerDirectory.appendingPathComponent("tokenizer.json")

    struct Case {
        let name: String
        let text: String
        let ids: [Int]
        let puncNorm: String
        let puncNormIDs: [Int]
    }

    static func cases() throws -> (header: [String: Any], cases: [Case]) {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("chatterbox_en.jsonl"))
        let lines = data.split(separator: UInt8(ascii: "\n"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        let cases = try lines.dropFirst().map { line -> Case in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            return Case(name: try #require(object["name"] as? String), text: try #require(object["text"] as? String),
                        ids: try #require(object["ids"] as? [Int]), puncNorm: try #require(object["punc_norm"] as? String),
                        puncNormIDs: try #require(object["punc_norm_ids"] as? [Int]))
        }
        return (header, cases)
    }

    /// Strings compared code point by code point (Swift `==` would accept canonically equivalent ones).
    static func same(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

    @Test func matchesUpstreamOnEveryFixtureString() throws {
        let tokenizer = try EnglishTokenizer(contentsOf: Self.tokenizerFile)
        let (header, cases) = try Self.cases()
        #expect(cases.count == header["cases"] as? Int)
        #expect(cases.count >= 300)
        var idMatches = 0, normMatches = 0, normIDMatches = 0
        var failures: [String] = []
        for item in cases {
            let ids = tokenizer.encode(item.text)
            if ids == item.ids { idMatches += 1 } else { failures.append("\(item.name) encode: \(ids) != \(item.ids)") }
            let normed = TextNormalization.puncNorm(item.text)
            if Self.same(normed, item.puncNorm) { normMatches += 1 } else { failures.append("\(item.name) punc_norm: \(normed.debugDescription) != \(item.puncNorm.debugDescription)") }
            if tokenizer.encode(normed) == item.puncNormIDs { normIDMatches += 1 } else { failures.append("\(item.name) encode(punc_norm)") }
        }
        print("EnglishTokenizerTests: \(cases.count) strings (tokenizers \(header["tokenizers"] ?? "?")): "
            + "encode \(idMatches)/\(cases.count), punc_norm \(normMatches)/\(cases.count), "
            + "encode(punc_norm) \(normIDMatches)/\(cases.count) match upstream")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
    }

    @Test func specialTokensAndT3Padding() throws {
        let tokenizer = try EnglishTokenizer(contentsOf: Self.tokenizerDirectory)  // a directory works too
        #expect(tokenizer.bpe.id(of: "[STOP]") == 0)
        #expect(tokenizer.bpe.id(of: "[UNK]") == 1)
        #expect(tokenizer.bpe.id(of: "[SPACE]") == 2)
        #expect(tokenizer.bpe.id(of: "[START]") == EnglishTokenizer.startTextToken)
        #expect(tokenizer.bpe.id(of: "\u{00A0}") == 329)
        #expect(tokenizer.bpe.id(of: " ") == nil)
        #expect(tokenizer.bpe.vocabularySize == 704)
        #expect(tokenizer.encode("") == [])
        #expect(tokenizer.encode("a b") == [14, 2, 15])
        #expect(tokenizer.encode("\u{4E2D}") == [1])  // unknown character
        let padded = tokenizer.textTokens(for: "hello world")
        #expect(padded.first == 255 && padded.last == 0)
        #expect(Array(padded.dropFirst().dropLast()) == tokenizer.encode(TextNormalization.puncNorm("hello world")))
        #expect(tokenizer.textTokens(for: "a b", normalize: false) == [255, 14, 2, 15, 0])
    }

    @Test func decodeInvertsEncodeForVocabularyText() throws {
        let tokenizer = try EnglishTokenizer(contentsOf: Self.tokenizerFile)
        for text in ["hello world, it's me.", "the quick brown fox", "naïve café", "ˈhɛloʊ"] {
            #expect(Self.same(tokenizer.decode(tokenizer.encode(text)), text))
        }
        #expect(tokenizer.decode([255, 21, 1, 2, 22, 0, 100_000]) == "[START]h i")
    }

    @Test func puncNormEdgeCases() {
        #expect(TextNormalization.puncNorm("") == TextNormalization.emptyTextReplacement)
        #expect(TextNormalization.puncNorm("   ") == ".")
        #expect(TextNormalization.puncNorm("hello") == "Hello.")
        #expect(TextNormalization.puncNorm("ßig") == "SSig.")
        // Upstream keeps the double spaces its replacements introduce.
        #expect(TextNormalization.puncNorm("wait... what") == "Wait,  what.")
        #expect(TextNormalization.puncNorm("a ... b") == "A,  b.")  // "A , " + " b" → " ," → ","
        #expect(TextNormalization.puncNorm(" lower") == "lower.")  // capitalisation looks before stripping
        #expect(TextNormalization.puncNorm("end -") == "End -")
    }

    @Test func loadErrorsNameTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let missing = directory.appendingPathComponent("tokenizer.json")
        #expect(throws: TokenizerError.unreadable(path: missing.path, reason: "no such file")) {
            try EnglishTokenizer(contentsOf: directory)
        }

        try Data("{\"model\": ".utf8).write(to: missing)
        do {
            _ = try EnglishTokenizer(contentsOf: missing)
            Issue.record("truncated JSON was accepted")
        } catch let error as TokenizerError {
            guard case let .corrupt(path, _) = error else { Issue.record("\(error)"); return }
            #expect(path == missing.path)
            #expect(error.description.hasPrefix(missing.path))
        }

        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.tokenizerFile)) as? [String: Any])
        var model = try #require(json["model"] as? [String: Any])
        var vocab = try #require(model["vocab"] as? [String: Any])
        vocab["[START]"] = nil
        model["vocab"] = vocab
        json["model"] = model
        json["added_tokens"] = []
        json["model"] = model
        try JSONSerialization.data(withJSONObject: json).write(to: missing)
        #expect(throws: TokenizerError.corrupt(path: missing.path, reason: "the vocabulary has no [START] token")) {
            try EnglishTokenizer(contentsOf: missing)
        }

        json["normalizer"] = ["type": "NFC"]
        try JSONSerialization.data(withJSONObject: json).write(to: missing)
        #expect(throws: TokenizerError.unsupported(path: missing.path, feature: "normalizer is not null")) {
            try EnglishTokenizer(contentsOf: missing)
        }
    }
}
