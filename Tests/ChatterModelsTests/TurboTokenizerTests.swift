import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Upstream parity of Chatterbox-Turbo's text front end: `tts_turbo.punc_norm` and the GPT-2
/// byte-level BPE tokenizer (`AutoTokenizer` over vocab.json + merges.txt + 19 tags), against
/// `Tests/Fixtures/tokenizers/chatterbox_turbo.jsonl` (tools/fixtures/fixturegen/tokenizers_turbo.py).
@Suite struct TurboTokenizerTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let tokenizerDirectory = tests.appendingPathComponent("Assets/tokenizers/chatterbox-turbo")
    static let fixture = tests.appendingPathComponent("Fixtures/tokenizers/chatterbox_turbo.jsonl")

    @Test func matchesUpstreamOnEveryFixtureString() throws {
        let tokenizer = try TurboTokenizer(directory: Self.tokenizerDirectory)
        #expect(tokenizer.bpe.vocabularySize == 50276)
        let lines = try Data(contentsOf: Self.fixture).split(separator: UInt8(ascii: "\n"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        var count = 0, idMatches = 0, normMatches = 0, normIDMatches = 0, tagged = Set<String>()
        var failures: [String] = []
        for line in lines.dropFirst() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            let name = try #require(object["name"] as? String), text = try #require(object["text"] as? String)
            let ids = tokenizer.encode(text), expected = try #require(object["ids"] as? [Int])
            if ids == expected { idMatches += 1 } else { failures.append("\(name) encode \(text.debugDescription): \(ids) != \(expected)") }
            let normed = tokenizer.normalize(text), expectedNorm = try #require(object["punc_norm"] as? String)
            if Array(normed.unicodeScalars) == Array(expectedNorm.unicodeScalars) { normMatches += 1 } else {
                failures.append("\(name) punc_norm: \(normed.debugDescription) != \(expectedNorm.debugDescription)")
            }
            if try tokenizer.t3Input(for: text) == (try #require(object["punc_norm_ids"] as? [Int])) { normIDMatches += 1 } else {
                failures.append("\(name) encode(punc_norm)")
            }
            for id in expected where id > 50256 { tagged.insert(tokenizer.bpe.token(of: id) ?? "?") }
            count += 1
        }
        print("TurboTokenizerTests: \(count) strings (transformers \(header["transformers"] ?? "?"), tokenizers \(header["tokenizers"] ?? "?")): "
            + "encode \(idMatches)/\(count), punc_norm \(normMatches)/\(count), encode(punc_norm) \(normIDMatches)/\(count) match upstream")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
        #expect(count == header["cases"] as? Int && count >= 300)
        #expect(tagged.count == 19, "every paralinguistic tag occurs in the fixture: \(tagged.sorted())")
    }

    @Test func tagsAndPieces() throws {
        let tokenizer = try TurboTokenizer(directory: Self.tokenizerDirectory)
        #expect(tokenizer.encode(" [chuckle]") == [220, 50274])
        #expect(tokenizer.encode("[laugh]") == [50275])
        #expect(tokenizer.encode("<|endoftext|>") == [50256])
        #expect(tokenizer.encode("Hello world") == [15496, 995])
        // The GPT-2 regex: contractions, a space kept with the next word, the last of a space run alone.
        func pieces(_ text: String) -> [String] {
            let scalars = text.unicodeScalars.map(\.value)
            return ByteLevelPreTokenizer.split(scalars[...]).map { String(String.UnicodeScalarView(scalars[$0].compactMap(Unicode.Scalar.init))) }
        }
        #expect(pieces("I'm  here!!") == ["I", "'m", " ", " here", "!!"])
        #expect(pieces("a \n b") == ["a", " \n", " b"])
        #expect(pieces("x  ") == ["x", "  "])
        #expect(ByteLevelPreTokenizer.byteToScalar[0x20] == 0x120 && ByteLevelPreTokenizer.byteToScalar[0x41] == 0x41)
    }

    @Test func missingOrCorruptFilesAreTypedErrors() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: TokenizerError.self) { try TurboTokenizer(directory: directory.url) }
        let files = ["vocab.json", "merges.txt"]
        for name in files {
            try FileManager.default.copyItem(at: Self.tokenizerDirectory.appendingPathComponent(name), to: directory.path(name))
        }
        _ = try TurboTokenizer(directory: directory.url)  // the added tokens are optional
        try Data("{\"[laugh]\": 5}".utf8).write(to: directory.path("added_tokens.json"))
        try Data("{\"added_tokens_decoder\": {\"5\": {\"content\": \"[cry]\"}}}".utf8).write(to: directory.path("tokenizer_config.json"))
        #expect(throws: TokenizerError.self) { try TurboTokenizer(directory: directory.url) }
        try Data("{\"added_tokens_decoder\": {\"5\": {\"content\": \"[laugh]\", \"lstrip\": true}}}".utf8).write(to: directory.path("tokenizer_config.json"))
        #expect(throws: TokenizerError.unsupported(path: directory.url.path, feature: "added token [laugh] with lstrip")) {
            try TurboTokenizer(directory: directory.url)
        }
        try Data("#version: 0.2\nĠ t x\n".utf8).write(to: directory.path("merges.txt"))
        #expect(throws: TokenizerError.self) { try TurboTokenizer(directory: directory.url) }
        // The family's loader picks the tokenizer by what the directory holds.
        #expect(try TextTokenizers.load(at: Self.tokenizerDirectory) is TurboTokenizer)
        #expect(try TextTokenizers.load(directory: Self.tokenizerDirectory, for: .chatterboxTurbo) is TurboTokenizer)
    }
}
