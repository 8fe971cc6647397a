import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Upstream parity of spacy-pkuseg 1.0.2's `pkuseg().cut(text)` (the segmentation in front of
/// chatterbox's Cangjie coding) against `Tests/Fixtures/tokenizers/pkuseg_cut.jsonl`
/// (tools/fixtures/fixturegen/tokenizers_pkuseg.py), with the small model spacy-pkuseg's own trainer
/// made (`Tests/Assets/pkuseg/synthetic`, tools/pkuseg/train_test_model.py); and the loaders' refusal
/// of files that are damaged or contradict each other.
@Suite struct PkusegSegmenterTests {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let modelDirectory = tests.appendingPathComponent("Assets/pkuseg/synthetic")
    static let fixture = tests.appendingPathComponent("Fixtures/tokenizers/pkuseg_cut.jsonl")
    static let words = tests.appendingPathComponent("Fixtures/tokenizers/pkuseg_words_cut.pkl")
    /// Where tools/pkuseg/fetch-model.sh puts the real model and the wheel's whole `default.pkl`.
    static let fetched = tests.deletingLastPathComponent().appendingPathComponent(".cache/\(PkusegModelLocation.cacheSubdirectory)")

    private static let loaded = Result { try PkusegModel(directory: modelDirectory) }
    static func model() throws -> PkusegModel { try loaded.get() }

    struct Case {
        let text: String
        let words: [String]
        let user: Bool
    }

    static func cases() throws -> (header: [String: Any], cases: [Case]) {
        let lines = try Data(contentsOf: fixture).split(separator: UInt8(ascii: "\n"))
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0])) as? [String: Any])
        let cases = try lines.dropFirst().map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
            return Case(text: try #require(object["text"] as? String), words: try #require(object["words"] as? [String]),
                        user: object["user"] as? Bool ?? false)
        }
        return (header, cases)
    }

    /// Runs every case; the failures' descriptions and the number that matched.
    static func compare(_ cases: [Case], segmenter: PkusegSegmenter, userSegmenter: PkusegSegmenter) -> (matched: Int, failures: [String]) {
        var matched = 0, failures: [String] = []
        for (index, testCase) in cases.enumerated() {
            let words = (testCase.user ? userSegmenter : segmenter).cut(testCase.text)
            // Code point by code point: Swift's == would merge canonically equivalent spellings.
            if words.map({ Array($0.unicodeScalars) }) == testCase.words.map({ Array($0.unicodeScalars) }) {
                matched += 1
            } else {
                failures.append("case \(index)\(testCase.user ? " (user dictionary)" : "") \(testCase.text.debugDescription): \(words) != \(testCase.words)")
            }
        }
        return (matched, failures)
    }

    @Test func cutMatchesUpstreamOnEveryFixtureString() throws {
        let (header, cases) = try Self.cases()
        let userWords = try #require(header["user_words"] as? [String])
        let model = try Self.model(), wordList = try PkusegWordList(contentsOf: Self.words)
        let (matched, failures) = Self.compare(cases, segmenter: PkusegSegmenter(model: model, wordList: wordList),
                                               userSegmenter: PkusegSegmenter(model: model, wordList: wordList, userWords: userWords))
        let userCases = cases.filter(\.user).count
        print("PkusegSegmenterTests: \(cases.count) strings (\(cases.count - userCases) through pkuseg(), \(userCases) with a user dictionary; "
            + "spacy-pkuseg \(header["spacy_pkuseg"] ?? "?"), \(header["postprocessed"] ?? "?") changed by post-processing), "
            + "\(matched)/\(cases.count) cut identically to upstream")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
        #expect(cases.count == header["cases"] as? Int)
        #expect(cases.count - userCases >= 300 && userCases >= 50)
        #expect(model.tagCount == 5 && model.featureCount > 1000)
    }

    /// With the wheel's whole `default.pkl` (fetched by tools/pkuseg/fetch-model.sh): the same words,
    /// since post-processing only looks up what the texts hold.
    @Test func cutWithTheWheelsWholeWordList() throws {
        let wholeList = Self.fetched.appendingPathComponent(PkusegWordList.defaultFileName)
        guard FileManager.default.fileExists(atPath: wholeList.path) else {
            print("PkusegSegmenterTests: \(wholeList.path) is not there (tools/pkuseg/fetch-model.sh fetches it); the whole-list check is skipped")
            return
        }
        let (header, cases) = try Self.cases()
        let model = try Self.model(), wordList = try PkusegWordList(contentsOf: wholeList)
        #expect(wordList.count == 389_925)
        let (matched, failures) = Self.compare(cases, segmenter: PkusegSegmenter(model: model, wordList: wordList),
                                               userSegmenter: PkusegSegmenter(model: model, wordList: wordList,
                                                                              userWords: try #require(header["user_words"] as? [String])))
        print("PkusegSegmenterTests: with the wheel's default.pkl (\(wordList.count) words): \(matched)/\(cases.count) cut identically to upstream")
        for failure in failures.prefix(20) { Issue.record("\(failure)") }
        #expect(failures.isEmpty)
    }

    @Test func postProcessingAndUserDictionaryRules() throws {
        let model = try Self.model()
        // Runs whose concatenation is a listed word merge, longest first, unless every part is listed.
        let segmenter = PkusegSegmenter(model: model, wordList: PkusegWordList(words: ["ab", "abc", "cd", "xyz"]))
        let bytes = { (words: [String]) in words.map { Array($0.utf8) } }
        #expect(segmenter.postprocess(bytes(["a", "b", "c", "d"])) == bytes(["abc", "d"]))
        #expect(segmenter.postprocess(bytes(["ab", "c", "d"])) == bytes(["abc", "d"]))
        #expect(segmenter.postprocess(bytes(["c", "d", "ab"])) == bytes(["cd", "ab"]))
        #expect(segmenter.postprocess(bytes(["x", "y", "z", "x", "yz"])) == bytes(["xyz", "xyz"]))
        let listedParts = PkusegSegmenter(model: model, wordList: PkusegWordList(words: ["ab", "cd", "abcd"]))
        #expect(listedParts.postprocess(bytes(["ab", "cd"])) == bytes(["ab", "cd"]))
        #expect(listedParts.postprocess(bytes(["a", "b", "cd"])) == bytes(["abcd"]))
        // Python compares code points: the decomposed spelling is another word.
        let accents = PkusegSegmenter(model: model, wordList: PkusegWordList(words: ["é"]))
        #expect(accents.postprocess(bytes(["e", "\u{301}"])) == bytes(["e", "\u{301}"]))
        #expect(PkusegWordList(text: " \n a\nb \n").count == 2)  // strip(), then split("\n"): "a", "b"

        // The user dictionary's scan: a match cut short by a character the trie lacks keeps what it read.
        let user = PkusegUserDictionary(words: ["ab", "abcd", " x "])
        let solve = { (text: String) -> [String] in
            let scalars = Array(text.unicodeScalars)[...]
            return user.solve(scalars).map { String(String.UnicodeScalarView(scalars[$0.0])) + ($0.1 ? "*" : "") }
        }
        #expect(solve("abcy") == ["abc*", "y"])
        #expect(solve("abcx") == ["abc*", "x*"])
        #expect(solve("abc") == ["ab*", "c"])
        #expect(solve("zabcdz") == ["z", "abcd*", "z"])
        #expect(solve("xx") == ["x*", "x*"])
        #expect(PkusegUserDictionary(words: []).solve(Array("abc".unicodeScalars)[...]).map(\.1) == [false])
    }

    @Test func normalisationAndWhitespaceAsPythonHasThem() throws {
        let segmenter = PkusegSegmenter(model: try Self.model(), wordList: PkusegWordList(words: []))
        #expect(segmenter.cut("") == [] && segmenter.cut(" \u{3000}\u{1C}\u{85}\n") == [])
        // Every Python whitespace splits (U+200B is not one); nothing else does.
        for space in ["\u{A0}", "\u{2003}", "\u{2028}", "\u{1C}", "\u{85}", "\u{B}\u{C}"] {
            #expect(segmenter.cut("我\(space)你") == ["我", "你"], "\(space.debugDescription)")
        }
        #expect(segmenter.cut("我\u{200B}你").joined() == "我\u{200B}你")
        #expect(PkusegSegmenter.normalizedNode("3") == Array("**Num".utf8) && PkusegSegmenter.normalizedNode("十") == Array("**Num".utf8))
        #expect(PkusegSegmenter.normalizedNode(".") == Array("&".utf8) && PkusegSegmenter.normalizedNode("Ｇ") == Array("**Letter".utf8))
        #expect(PkusegSegmenter.normalizedNode("ｊ") == Array("ｊ".utf8) && PkusegSegmenter.normalizedNode("a") == Array("a".utf8))
        // Words are code points of the input: a Swift Character split across words stays split.
        #expect(segmenter.cut("\r\n").isEmpty && segmenter.cut("e\u{301}").joined() == "e\u{301}")
    }

    // MARK: Damaged and lying files

    /// A copy of the synthetic model (and a word list) in a scratch folder, with `change` applied.
    static func damagedCopy(_ change: (URL) throws -> Void) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pkuseg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in [PkusegModel.featuresFileName, PkusegModel.weightsFileName] {
            try FileManager.default.copyItem(at: modelDirectory.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: words, to: directory.appendingPathComponent(PkusegWordList.defaultFileName))
        try change(directory)
        return directory
    }

    static func corruptReason(_ change: (URL) throws -> Void) throws -> String {
        let directory = try damagedCopy(change)
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            _ = try PkusegSegmenter(directory: directory)
        } catch let error as PkusegError {
            #expect(error.description.contains("tools/pkuseg/fetch-model.sh") && error.description.contains(PkusegModelLocation.environmentVariable))
            switch error {
            case let .corrupt(_, reason), let .unreadable(_, reason): return reason
            }
        }
        return "loaded"
    }

    /// `features.msgpack` rewritten: `edit` gets the map FeatureExtractor.save writes.
    static func rewriteFeatures(_ directory: URL, _ edit: (inout [MessagePackPair]) -> Void) throws {
        let url = directory.appendingPathComponent(PkusegModel.featuresFileName)
        guard case var .map(pairs) = try MessagePackReader.read(try Data(contentsOf: url)) else { throw CocoaError(.fileReadCorruptFile) }
        edit(&pairs)
        try Data(MessagePackWriter.encode(.map(pairs))).write(to: url)
    }

    @Test func damagedFeatureTablesAreRefused() throws {
        #expect(try Self.corruptReason { _ in } == "loaded")
        // Rewriting an unchanged table loads: the writer below is faithful.
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { _ in } } == "loaded")
        #expect(try Self.corruptReason {
            let url = $0.appendingPathComponent(PkusegModel.featuresFileName)
            try Data(try Data(contentsOf: url).prefix(5000)).write(to: url)
        }.contains("truncated"))
        #expect(try Self.corruptReason { try Data([0x93, 0x01, 0x02, 0x03]).write(to: $0.appendingPathComponent(PkusegModel.featuresFileName)) }
            .contains("expected a map, found an array"))
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { $0.removeAll { $0.key == .string("tag_to_idx") } } }.contains("lacks tag_to_idx"))
        let outOfRange = try Self.corruptReason { try Self.rewriteFeatures($0) { pairs in
            pairs = pairs.map { $0.key == .string("feature_to_idx") ? MessagePackPair(key: $0.key, value: .map([MessagePackPair(key: .string("c.中"), value: .int(999_999))])) : $0 }
        } }
        #expect(outOfRange.contains("'c.中' has index 999999, outside the weights"), "\(outOfRange)")
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { pairs in
            pairs = pairs.map { $0.key == .string("tag_to_idx") ? MessagePackPair(key: $0.key, value: .map([MessagePackPair(key: .string("B"), value: .int(0))])) : $0 }
        } }.contains("names no tag 1"))
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { pairs in
            pairs = pairs.map { $0.key == .string("unigram") ? MessagePackPair(key: $0.key, value: .array([.int(3)])) : $0 }
        } }.contains("unigram: expected a string, found an integer"))
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { pairs in
            pairs = pairs.map { $0.key == .string("tag_to_idx") ? MessagePackPair(key: $0.key, value: .map([MessagePackPair(key: .string("B"), value: .string("0"))])) : $0 }
        } }.contains("is not an integer"))
        // Keys upstream does not read are skipped; a key given twice counts with its last value, as in a Python dict.
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { $0.append(MessagePackPair(key: .string("extra"), value: .array([.none, .float(1)]))) } } == "loaded")
        #expect(try Self.corruptReason { try Self.rewriteFeatures($0) { $0.append(MessagePackPair(key: .string("tag_to_idx"), value: .map([]))) } }
            .contains("names no tag 0"))
        #expect(try Self.corruptReason { try FileManager.default.removeItem(at: $0.appendingPathComponent(PkusegModel.featuresFileName)) }
            == "no such file")
    }

    /// `weights.npz` written as np.savez writes it: stored members, CRC-32s, the given arrays.
    static func writeWeights(_ directory: URL, members: [(String, Data)], compress: Bool = false) throws {
        var archive = Data(), central = Data()
        func le<T: FixedWidthInteger>(_ value: T) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
        for (name, contents) in members {
            let crc = contents.withUnsafeBytes { CRC32.checksum($0) }
            let header = le(UInt16(20)) + le(UInt16(0)) + le(UInt16(compress ? 8 : 0)) + le(UInt32(0)) + le(crc)
                + le(UInt32(contents.count)) + le(UInt32(contents.count)) + le(UInt16(name.utf8.count)) + le(UInt16(0))
            central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + header + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0))
                + le(UInt32(archive.count)) + Data(name.utf8)
            archive += le(UInt32(0x0403_4B50)) + header + Data(name.utf8) + contents
        }
        let end = le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(members.count)) + le(UInt16(members.count))
            + le(UInt32(central.count)) + le(UInt32(archive.count)) + le(UInt16(0))
        try (archive + central + end).write(to: directory.appendingPathComponent(PkusegModel.weightsFileName))
    }

    /// A `.npy` array: version 1.0 header padded to 64 bytes, then the raw elements.
    static func npy(descr: String, shape: [Int], _ elements: Data) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let length = UInt16(header.utf8.count)
        return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)]) + Data(header.utf8) + elements
    }

    static func doubles(_ values: [Double]) -> Data { values.withUnsafeBufferPointer { Data(buffer: $0) } }
    static func int64s(_ values: [Int64]) -> Data { values.withUnsafeBufferPointer { Data(buffer: $0) } }

    @Test func damagedWeightsAreRefused() throws {
        let original = try NumpyArchive(path: Self.modelDirectory.appendingPathComponent(PkusegModel.weightsFileName).path)
        let weights = try original.array(named: "w").float64Values(), sizes = try original.array(named: "sizes").integerValues()
        #expect(sizes.count == 2 && weights.count == Int(sizes[0] * (sizes[1] + sizes[0])))
        let sizesMember = ("sizes.npy", Self.npy(descr: "<i8", shape: [2], Self.int64s(sizes)))
        let wMember = ("w.npy", Self.npy(descr: "<f8", shape: [weights.count], Self.doubles(weights)))
        // The hand-written archive loads: what follows changes one thing at a time.
        #expect(try Self.corruptReason { try Self.writeWeights($0, members: [sizesMember, wMember]) } == "loaded")
        #expect(try Self.corruptReason { try Self.writeWeights($0, members: [sizesMember]) }.contains("no array 'w'"))
        #expect(try Self.corruptReason { try Self.writeWeights($0, members: [sizesMember, wMember], compress: true) }.contains("np.savez_compressed"))
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [sizesMember, ("w.npy", Self.npy(descr: "<f8", shape: [weights.count - 1], Self.doubles(weights.dropLast())))])
        }.contains("has \(weights.count - 1) weights"))
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [("sizes.npy", Self.npy(descr: "<i8", shape: [2], Self.int64s([5, 1 << 60]))), wMember])
        }.contains("need 5·"))
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [("sizes.npy", Self.npy(descr: "<i8", shape: [1], Self.int64s([5]))), wMember])
        }.contains("not [n_tag, n_feature]"))
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [sizesMember, ("w.npy", Self.npy(descr: "<f4", shape: [weights.count], Data(count: weights.count * 4)))])
        }.contains("not float64"))
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [sizesMember, ("w.npy", Self.npy(descr: "<f8", shape: [weights.count], Self.doubles(weights).prefix(100)))])
        }.contains("truncated"))
        // A flipped bit in the weights fails the member's CRC-32, as zipfile's check fails np.load.
        #expect(try Self.corruptReason {
            let url = $0.appendingPathComponent(PkusegModel.weightsFileName)
            var data = try Data(contentsOf: url)
            data[data.count - 400] ^= 0x10
            try data.write(to: url)
        }.contains("CRC-32"))
        #expect(try Self.corruptReason { try Data("not a zip".utf8).write(to: $0.appendingPathComponent(PkusegModel.weightsFileName)) }
            .contains("not a readable .npz"))
        // Features whose indices reach past a smaller weight table.
        #expect(try Self.corruptReason {
            try Self.writeWeights($0, members: [("sizes.npy", Self.npy(descr: "<i8", shape: [2], Self.int64s([5, 10]))),
                                                ("w.npy", Self.npy(descr: "<f8", shape: [75], Data(count: 600)))])
        }.contains("outside the weights"))
    }

    @Test func wordListFileErrors() throws {
        #expect(try Self.corruptReason { try Data([0x80, 3, 0x4E, 0x2E]).write(to: $0.appendingPathComponent(PkusegWordList.defaultFileName)) }
            .contains("not the str of words"))
        #expect(try Self.corruptReason { try Data([0x80, 3, 0x58]).write(to: $0.appendingPathComponent(PkusegWordList.defaultFileName)) }
            .contains("not a readable pickle"))
        #expect(try Self.corruptReason { try FileManager.default.removeItem(at: $0.appendingPathComponent(PkusegWordList.defaultFileName)) }
            == "no such file")
    }

    // MARK: Finding the model, and doing without it

    @Test func locationOrderAndTheLazySegmenter() throws {
        let directory = try Self.damagedCopy { _ in }
        defer { try? FileManager.default.removeItem(at: directory) }
        let nowhere = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)")
        #expect(PkusegModelLocation.locate(cacheRoot: nil, environment: [:], workingDirectory: nowhere) == nil)
        #expect(PkusegModelLocation.locate(cacheRoot: nil, environment: [PkusegModelLocation.environmentVariable: directory.path],
                                           workingDirectory: nowhere)?.path == directory.path)
        let cacheRoot = directory.appendingPathComponent("root")
        let cached = cacheRoot.appendingPathComponent(PkusegModelLocation.cacheSubdirectory)
        try FileManager.default.createDirectory(at: cached, withIntermediateDirectories: true)
        for name in PkusegModelLocation.requiredFileNames {
            try FileManager.default.copyItem(at: directory.appendingPathComponent(name), to: cached.appendingPathComponent(name))
        }
        #expect(PkusegModelLocation.locate(cacheRoot: cacheRoot, environment: [:], workingDirectory: nowhere)?.path == cached.path)
        #expect(PkusegModelLocation.candidates(cacheRoot: cacheRoot, environment: [:], workingDirectory: nowhere).last?.path
            == nowhere.appendingPathComponent(".cache/pkuseg/spacy-pkuseg-1.0.2").path)

        // Found: segments on first use. An explicit folder without the model: logged once, then nil.
        let messages = LockedMessages()
        let log = TextProcessingLog(sink: { messages.append($0) })
        let found = try #require(LazyPkusegSegmenter.installed(cacheRoot: cacheRoot, log: log, environment: [:], workingDirectory: nowhere))
        #expect(found.cut("我是学生。") == ["我", "是", "学生", "。"])
        let explicit = try #require(LazyPkusegSegmenter.installed(cacheRoot: cacheRoot, log: log,
                                                                  environment: [PkusegModelLocation.environmentVariable: nowhere.path],
                                                                  workingDirectory: nowhere))
        #expect(explicit.cut("我") == nil && explicit.cut("你") == nil)
        #expect(messages.all.count == 1 && messages.all[0].contains("segmentation skipped") && messages.all[0].contains("fetch-model.sh"))

        // The Chinese step without a model warns once (upstream's message, with how to fetch the model)
        // and codes the text as it is; with one it codes the words joined by spaces.
        let table = #"["我\tab", "是\tcd"]"#
        let warnings = LockedMessages()
        let without = try ChineseCangjieConverter(json: Data(table.utf8), path: "t", log: TextProcessingLog(sink: { warnings.append($0) }))
        #expect(without.process(" 我是\n我 ") == " [cj_a][cj_b][cj_.][cj_c][cj_d][cj_.]\n[cj_a][cj_b][cj_.] ")
        _ = without.process("是")
        #expect(warnings.all == [ChineseCangjieConverter.segmentationSkipped])
        #expect(warnings.all[0].hasPrefix("pkuseg not available - Chinese segmentation will be skipped") && warnings.all[0].contains("fetch-model.sh"))
        let with = try ChineseCangjieConverter(json: Data(table.utf8), path: "t", segmenter: found)
        #expect(with.process(" 我是\n学生 ") == "[cj_a][cj_b][cj_.] [cj_c][cj_d][cj_.] 学生")
        #expect(ChineseCangjieConverter(withoutTableLoggingTo: nil, segmenter: found).process("我是学生。 ") == "我 是 学生 。")
    }
}

/// A minimal MessagePack writer for the tests' rewritten feature tables (the reader is the code under
/// test; these bytes are what Python's msgpack writes for the same values).
enum MessagePackWriter {
    static func encode(_ value: MessagePackValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, to: &out)
        return out
    }

    private static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

    private static func write(_ value: MessagePackValue, to out: inout [UInt8]) {
        switch value {
        case .none: out.append(0xC0)
        case let .bool(flag): out.append(flag ? 0xC3 : 0xC2)
        case let .int(number):
            if (0...0x7F).contains(number) { out.append(UInt8(number)) }
            else if (-32 ..< 0).contains(number) { out.append(UInt8(bitPattern: Int8(number))) }
            else { out.append(0xD3); out += bigEndian(number) }
        case let .uint(number): out.append(0xCF); out += bigEndian(number)
        case let .float(number): out.append(0xCB); out += bigEndian(number.bitPattern)
        case let .string(text):
            let bytes = Array(text.utf8)
            if bytes.count < 32 { out.append(0xA0 | UInt8(bytes.count)) } else { out.append(0xDB); out += bigEndian(UInt32(bytes.count)) }
            out += bytes
        case let .binary(bytes): out.append(0xC6); out += bigEndian(UInt32(bytes.count)); out += bytes
        case let .array(items):
            out.append(0xDD); out += bigEndian(UInt32(items.count))
            for item in items { write(item, to: &out) }
        case let .map(pairs):
            out.append(0xDF); out += bigEndian(UInt32(pairs.count))
            for pair in pairs { write(pair.key, to: &out); write(pair.value, to: &out) }
        case let .ext(type, data):
            out.append(0xC9); out += bigEndian(UInt32(data.count)); out.append(UInt8(bitPattern: type)); out += data
        }
    }
}

private final class LockedMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func append(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
}
