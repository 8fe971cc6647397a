import ChatterTensor
import Foundation

/// Why spacy-pkuseg's model or word list could not be loaded. Every case names the file and says
/// what to do.
public enum PkusegError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is not what spacy-pkuseg 1.0.2 writes, or its contents contradict each other.
    case corrupt(path: String, reason: String)

    static let remedy = "fetch spacy-pkuseg 1.0.2's model with tools/pkuseg/fetch-model.sh (or `chatterstream download --model chatterbox-multilingual`), "
        + "or point \(PkusegModelLocation.environmentVariable) at a folder holding \(PkusegModelLocation.requiredFileNames.joined(separator: ", "))"

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read the pkuseg model file (\(reason)); \(Self.remedy)"
        case let .corrupt(path, reason): return "\(path): corrupt pkuseg model file: \(reason); \(Self.remedy)"
        }
    }
}

/// A Python `str` as a dict or set key compares it: by code points, here its UTF-8 bytes. Swift's
/// `String` equality merges canonically equivalent spellings (`é` and `e` + U+0301), which Python's
/// never does; the multilingual tokenizer hands pkuseg NFKD text, so the difference is real.
struct PythonStringKey: Hashable, Sendable {
    var utf8: [UInt8]

    init(_ utf8: [UInt8]) { self.utf8 = utf8 }
    init(_ bytes: some Sequence<UInt8>) { utf8 = Array(bytes) }
    init(_ text: String) { utf8 = Array(text.utf8) }

    func hash(into hasher: inout Hasher) {
        utf8.withUnsafeBytes { hasher.combine(bytes: $0) }
        hasher.combine(utf8.count)
    }
}

/// spacy-pkuseg 1.0.2's model as `pkuseg(model_name)` loads it: `FeatureExtractor.load` reads
/// `features.msgpack` (srsly msgpack: `unigram` and `bigram` string lists, `feature_to_idx` and
/// `tag_to_idx` maps of string to int) and `Model.load` reads `weights.npz` (`sizes` = [n_tag,
/// n_feature], `w` float64 of n_tag·(n_feature + n_tag): node weights `w[feature·n_tag + tag]`, then
/// transition weights `w[n_feature·n_tag + tag·n_tag + previous]`).
///
/// Upstream trusts these files (its Cython decoder reads `w` unchecked); here every index is checked
/// at load time, so a file that lies is a `PkusegError`, never a wild read. `bigram` is read and
/// checked but unused: upstream's decoder never consults it either.
public struct PkusegModel: Sendable {
    public static let featuresFileName = "features.msgpack"
    public static let weightsFileName = "weights.npz"

    /// `feature_to_idx`.
    let featureIndex: [PythonStringKey: Int32]
    /// `unigram`: the words the word features look for.
    let unigrams: Set<PythonStringKey>
    /// `model.n_tag` and `model.n_feature`.
    public let tagCount: Int
    public let featureCount: Int
    /// `model.w`.
    let weights: [Double]
    /// Per tag index: whether its name contains "B" (the tag starts a word: `B`, `B_single`).
    let tagStartsWord: [Bool]

    /// Loads `features.msgpack` and `weights.npz` from `directory`.
    public init(directory: URL) throws {
        try self.init(features: directory.appendingPathComponent(Self.featuresFileName),
                      weights: directory.appendingPathComponent(Self.weightsFileName))
    }

    public init(features featuresURL: URL, weights weightsURL: URL) throws {
        let features = try FeatureTable(contentsOf: featuresURL)
        let (tagCount, featureCount, weights) = try Self.readWeights(weightsURL)
        func contradiction(_ reason: String) -> PkusegError {
            .corrupt(path: featuresURL.path, reason: "\(reason) (\(weightsURL.lastPathComponent) has \(featureCount) features and \(tagCount) tags)")
        }
        // Upstream's decoder indexes `w` with these unchecked.
        if let (name, index) = features.featureIndex.first(where: { !(0..<featureCount).contains(Int($0.value)) }) {
            throw contradiction("feature '\(String(decoding: name.utf8, as: UTF8.self))' has index \(index), outside the weights")
        }
        // `idx_to_tag = {idx: tag for tag, idx in tag_to_idx.items()}`: the last name of an index wins.
        var tagNames: [Int64: String] = [:]
        for (name, index) in features.tagIndex { tagNames[index] = name }
        var startsWord: [Bool] = []
        for tag in 0..<tagCount {
            guard let name = tagNames[Int64(tag)] else { throw contradiction("tag_to_idx names no tag \(tag)") }
            startsWord.append(name.contains("B"))
        }
        featureIndex = features.featureIndex
        unigrams = features.unigrams
        self.tagCount = tagCount
        self.featureCount = featureCount
        self.weights = weights
        tagStartsWord = startsWord
    }

    /// `weights.npz`: (n_tag, n_feature, w), checked as `Model.load` asserts and beyond.
    private static func readWeights(_ url: URL) throws -> (Int, Int, [Double]) {
        func corrupt(_ reason: String) -> PkusegError { .corrupt(path: url.path, reason: reason) }
        guard FileManager.default.fileExists(atPath: url.path) else { throw PkusegError.unreadable(path: url.path, reason: "no such file") }
        let sizes: [Int64], weights: [Double]
        do {
            let archive = try NumpyArchive(path: url.path)
            sizes = try archive.array(named: "sizes").integerValues()
            let w = try archive.array(named: "w")
            guard w.shape.count == 1 else { throw NumpyFormatError("'w' has shape \(w.shape), not one dimension") }
            weights = try w.float64Values()
        } catch let error as NumpyFormatError {
            throw corrupt(error.reason)
        } catch {
            throw PkusegError.unreadable(path: url.path, reason: "\(error)")
        }
        guard sizes.count >= 2 else { throw corrupt("'sizes' holds \(sizes.count) values, not [n_tag, n_feature]") }
        guard let tagCount = Int(exactly: sizes[0]), let featureCount = Int(exactly: sizes[1]), tagCount >= 1, featureCount >= 1 else {
            throw corrupt("'sizes' is \(sizes), not two positive counts")
        }
        // n_tag·(n_feature + n_tag), overflow-checked: the length `Model.load` asserts.
        let (rows, rowsOverflow) = featureCount.addingReportingOverflow(tagCount)
        let (expected, overflow) = tagCount.multipliedReportingOverflow(by: rows)
        guard !rowsOverflow, !overflow, weights.count == expected else {
            throw corrupt("'w' has \(weights.count) weights; \(tagCount) tags and \(featureCount) features need \(tagCount)·(\(featureCount) + \(tagCount))")
        }
        return (tagCount, featureCount, weights)
    }
}

/// The contents of `features.msgpack`, read straight into lookup tables.
struct FeatureTable {
    var featureIndex: [PythonStringKey: Int32] = [:]
    var unigrams: Set<PythonStringKey> = []
    /// `tag_to_idx` in file order (duplicates kept: the last one wins when inverted).
    var tagIndex: [(String, Int64)] = []

    init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PkusegError.unreadable(path: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? "\(error)" : "no such file")
        }
        do {
            try self.init(messagePack: data)
        } catch {
            throw PkusegError.corrupt(path: url.path, reason: "\(error)")
        }
    }

    /// Reads the top-level map `FeatureExtractor.save` writes; keys it does not read are skipped, as
    /// upstream ignores them, and a key given twice counts once, with its last value, as in Python.
    init(messagePack data: Data) throws(MessagePackError) {
        var reader = MessagePackReader(data)
        do {
            var seen: Set<String> = []
            for _ in 0..<(try reader.readMapHeader()) {
                let key = try reader.readString()
                seen.insert(key)
                switch key {
                case "unigram": unigrams = Set(try Self.readStrings(&reader, name: key).map(PythonStringKey.init))
                case "bigram": _ = try Self.readStrings(&reader, name: key)
                case "feature_to_idx":
                    featureIndex = [:]
                    for (name, index) in try Self.readIndexMap(&reader, name: key) {
                        guard let narrow = Int32(exactly: index) else { throw reader.fail("feature_to_idx maps a feature to \(index), outside any weight table") }
                        featureIndex[PythonStringKey(name)] = narrow
                    }
                case "tag_to_idx":
                    tagIndex = try Self.readIndexMap(&reader, name: key).map { (String(decoding: $0.0, as: UTF8.self), $0.1) }
                default: try reader.skipValue()
                }
            }
            try reader.expectEnd()
            let missing = ["unigram", "bigram", "feature_to_idx", "tag_to_idx"].filter { !seen.contains($0) }
            guard missing.isEmpty else { throw reader.fail("the map lacks \(missing.joined(separator: ", ")) (FeatureExtractor.load reads all four)") }
        } catch let error as MessagePackError {
            throw error
        } catch {
            throw reader.fail("\(error)")
        }
    }

    private static func readStrings(_ reader: inout MessagePackReader, name: String) throws -> [ArraySlice<UInt8>] {
        do {
            let count = try reader.readArrayHeader()
            var strings: [ArraySlice<UInt8>] = []
            strings.reserveCapacity(count)
            for _ in 0..<count { strings.append(try reader.readStringBytes()) }
            return strings
        } catch let error as MessagePackError {
            throw MessagePackError(offset: error.offset, reason: "\(name): \(error.reason)")
        }
    }

    /// A map of string to integer, pairs in file order.
    private static func readIndexMap(_ reader: inout MessagePackReader, name: String) throws -> [(ArraySlice<UInt8>, Int64)] {
        do {
            let count = try reader.readMapHeader()
            var pairs: [(ArraySlice<UInt8>, Int64)] = []
            pairs.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.readStringBytes()
                guard let index = try reader.readInteger() else {
                    throw reader.fail("the value of '\(String(decoding: key, as: UTF8.self))' is not an integer")
                }
                pairs.append((key, index))
            }
            return pairs
        } catch let error as MessagePackError {
            throw MessagePackError(offset: error.offset, reason: "\(name): \(error.reason)")
        }
    }
}

/// The word list spacy-pkuseg's post-processing merges by (`Postprocesser(None, [default.pkl])`,
/// what `pkuseg()` builds for `user_dict="default"`): `dicts/default.pkl` of the wheel, a pickled
/// `str` of words, one a line, read as upstream reads it: `pkl.load(f).strip().split("\n")`.
public struct PkusegWordList: Sendable {
    public static let defaultFileName = "default.pkl"
    let words: Set<PythonStringKey>

    public var count: Int { words.count }

    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PkusegError.unreadable(path: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? "\(error)" : "no such file")
        }
        let value: PickleValue
        do { value = try PickleReader.read(data) } catch {
            throw PkusegError.corrupt(path: url.path, reason: "not a readable pickle: \(error)")
        }
        guard case let .string(text) = value else {
            throw PkusegError.corrupt(path: url.path, reason: "the pickle holds \(value.kindName), not the str of words (one a line) spacy-pkuseg ships")
        }
        self.init(text: text)
    }

    /// Words from the text upstream unpickles (`text.strip().split("\n")`).
    public init(text: String) {
        let stripped = PythonText.stripped(text)
        words = Set(stripped.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(PythonStringKey.init))
    }

    /// Words given one by one (tests).
    public init(words: [String]) {
        self.words = Set(words.map(PythonStringKey.init))
    }

    func contains(_ word: [UInt8]) -> Bool { words.contains(PythonStringKey(word)) }
}

private extension PickleValue {
    var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "a bool"
        case .int: "an int"
        case .float: "a float"
        case .string: "a str"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        default: "an object"
        }
    }
}
