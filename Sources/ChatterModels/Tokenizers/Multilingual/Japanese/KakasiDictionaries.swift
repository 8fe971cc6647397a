import ChatterTensor
import Foundation

/// Why pykakasi's dictionaries could not be loaded. Every case names the file and says what to do.
public enum KakasiDictionaryError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is not the pickle pykakasi 2.3.0 ships, or its contents have the wrong shape.
    case corrupt(path: String, reason: String)

    public var description: String {
        let remedy = "fetch pykakasi 2.3.0's dictionaries with tools/kakasi/fetch-dictionaries.sh, or point CHATTERSTREAM_KAKASI_DICTIONARIES at a folder holding them"
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read the kakasi dictionary (\(reason)); \(remedy)"
        case let .corrupt(path, reason): return "\(path): corrupt kakasi dictionary: \(reason); \(remedy)"
        }
    }
}

/// One reading of a kanwa key, with pykakasi's condition on the text buffered before it.
struct KanwaReading: Equatable, Sendable {
    /// What `btext in con` accepts: `con is None`, a list (membership) or a string (substring).
    enum Condition: Equatable, Sendable {
        case always
        case bufferIsOneOf([[Unicode.Scalar]])
        case bufferIsSubstringOf([Unicode.Scalar])
    }

    let reading: [Unicode.Scalar]
    let condition: Condition

    func accepts(buffer: [Unicode.Scalar]) -> Bool {
        switch condition {
        case .always: return true
        case let .bufferIsOneOf(options): return options.contains(buffer)
        case let .bufferIsSubstringOf(haystack): return buffer.isEmpty || haystack.containsSubsequence(buffer)
        }
    }
}

/// pykakasi 2.3.0's three dictionaries that `kakasi().convert` reads for the hiragana it returns
/// (`pykakasi/data/` in its wheel, Python pickles, GPL-3.0-or-later; never committed here):
/// - `kanwadict4.db`: first kanji's code point → {word → [(reading, condition)]};
/// - `itaijidict4.db`: variant kanji (itaiji) → standard form, or None to drop a variation selector;
/// - `halfkana3.db`: half-width katakana (one or two code points) → full-width.
/// The romaji dictionaries are not loaded: `hiragana_normalize` never reads romaji.
struct KakasiDictionaries: Sendable {
    static let kanwaFileName = "kanwadict4.db"
    static let itaijiFileName = "itaijidict4.db"
    static let halfKanaFileName = "halfkana3.db"
    static let fileNames = [kanwaFileName, itaijiFileName, halfKanaFileName]

    /// Per first code point: word (as code points) → its readings in dictionary order.
    let kanwa: [Unicode.Scalar: [[Unicode.Scalar]: [KanwaReading]]]
    /// Per first code point: the longest word's length in code points.
    let kanwaLongestWord: [Unicode.Scalar: Int]
    /// `str.translate` table: nil drops the code point.
    let itaiji: [Unicode.Scalar: [Unicode.Scalar]?]
    /// Half-width katakana spelling (one or two code points) → full-width.
    let halfKana: [[Unicode.Scalar]: [Unicode.Scalar]]

    init(directory: URL) throws {
        func load(_ name: String) throws -> (path: String, value: PickleValue) {
            let url = directory.appendingPathComponent(name)
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw KakasiDictionaryError.unreadable(path: url.path, reason: (error as NSError).localizedDescription)
            }
            do { return (url.path, try PickleReader.read(data)) } catch {
                throw KakasiDictionaryError.corrupt(path: url.path, reason: "not a readable pickle: \(error)")
            }
        }

        let (kanwaPath, kanwaValue) = try load(Self.kanwaFileName)
        (kanwa, kanwaLongestWord) = try Self.kanwaTables(kanwaValue, path: kanwaPath)
        let (itaijiPath, itaijiValue) = try load(Self.itaijiFileName)
        itaiji = try Self.itaijiTable(itaijiValue, path: itaijiPath)
        let (halfKanaPath, halfKanaValue) = try load(Self.halfKanaFileName)
        halfKana = try Self.halfKanaTable(halfKanaValue, path: halfKanaPath)
    }

    private static func scalar(_ code: Int64, path: String) throws -> Unicode.Scalar {
        guard let bits = UInt32(exactly: code), let scalar = Unicode.Scalar(bits) else {
            throw KakasiDictionaryError.corrupt(path: path, reason: "key \(code) is not a Unicode scalar")
        }
        return scalar
    }

    /// A pickled string as the code points pykakasi compares (not Swift's canonical equivalence).
    private static func codePoints(_ value: PickleValue) -> [Unicode.Scalar]? {
        guard case let .string(text) = value else { return nil }
        // Reserved for 3 UTF-8 bytes a code point, exact for kana and kanji (`Array(unicodeScalars)`
        // would count them in a pass of its own first).
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity((text.utf8.count + 2) / 3)
        for scalar in text.unicodeScalars { scalars.append(scalar) }
        return scalars
    }

    private static func kanwaTables(_ value: PickleValue, path: String) throws
        -> ([Unicode.Scalar: [[Unicode.Scalar]: [KanwaReading]]], [Unicode.Scalar: Int])
    {
        func corrupt(_ reason: String) -> KakasiDictionaryError { .corrupt(path: path, reason: reason) }
        guard case let .dict(tables) = value else { throw corrupt("the top level is not a dict") }
        var kanwa: [Unicode.Scalar: [[Unicode.Scalar]: [KanwaReading]]] = [:]
        var longest: [Unicode.Scalar: Int] = [:]
        kanwa.reserveCapacity(tables.items.count)
        for (keyValue, tableValue) in tables.items {
            guard case let .int(code) = keyValue else { throw corrupt("a top-level key is not a code point") }
            let first = try scalar(code, path: path)
            guard case let .dict(words) = tableValue else { throw corrupt("the table of U+\(String(code, radix: 16, uppercase: true)) is not a dict") }
            var table: [[Unicode.Scalar]: [KanwaReading]] = [:]
            table.reserveCapacity(words.items.count)
            var longestWord = 0
            for (wordValue, readingsValue) in words.items {
                guard let word = codePoints(wordValue), word.first == first else {
                    throw corrupt("a word of the table of U+\(String(code, radix: 16, uppercase: true)) is not a string starting with that code point")
                }
                guard case let .list(readingValues) = readingsValue else { throw corrupt("the readings of \(String(String.UnicodeScalarView(word))) are not a list") }
                var readings: [KanwaReading] = []
                readings.reserveCapacity(readingValues.items.count)
                for readingValue in readingValues.items {
                    guard case let .tuple(pair) = readingValue, pair.count == 2, let reading = codePoints(pair[0]) else {
                        throw corrupt("a reading of \(String(String.UnicodeScalarView(word))) is not a (string, condition) pair")
                    }
                    let condition: KanwaReading.Condition
                    func options(_ values: [PickleValue]) throws -> KanwaReading.Condition {
                        .bufferIsOneOf(try values.map {
                            guard let option = codePoints($0) else { throw corrupt("a condition of \(String(String.UnicodeScalarView(word))) is not a string") }
                            return option
                        })
                    }
                    switch pair[1] {
                    case .none: condition = .always
                    case let .string(haystack): condition = .bufferIsSubstringOf(Array(haystack.unicodeScalars))
                    case let .list(list): condition = try options(list.items)
                    case let .tuple(items): condition = try options(items)
                    default: throw corrupt("a condition of \(String(String.UnicodeScalarView(word))) is neither None, a string nor a list")
                    }
                    readings.append(KanwaReading(reading: reading, condition: condition))
                }
                // The reader keeps one entry per key (the last value, as in Python), so this never overwrites.
                table[word] = readings
                longestWord = max(longestWord, word.count)
            }
            kanwa[first] = table
            longest[first] = longestWord
        }
        return (kanwa, longest)
    }

    private static func itaijiTable(_ value: PickleValue, path: String) throws -> [Unicode.Scalar: [Unicode.Scalar]?] {
        guard case let .dict(dict) = value else { throw KakasiDictionaryError.corrupt(path: path, reason: "the top level is not a dict") }
        var table: [Unicode.Scalar: [Unicode.Scalar]?] = [:]
        for (keyValue, targetValue) in dict.items {
            guard case let .int(code) = keyValue else { throw KakasiDictionaryError.corrupt(path: path, reason: "a key is not a code point") }
            let source = try scalar(code, path: path)
            switch targetValue {
            case .none: table[source] = .some(nil)
            case let .string(target): table[source] = Array(target.unicodeScalars)
            case let .int(targetCode): table[source] = [try scalar(targetCode, path: path)]
            default: throw KakasiDictionaryError.corrupt(path: path, reason: "the variant of U+\(String(code, radix: 16, uppercase: true)) is neither None, a string nor a code point")
            }
        }
        return table
    }

    private static func halfKanaTable(_ value: PickleValue, path: String) throws -> [[Unicode.Scalar]: [Unicode.Scalar]] {
        guard case let .dict(dict) = value else { throw KakasiDictionaryError.corrupt(path: path, reason: "the top level is not a dict") }
        var table: [[Unicode.Scalar]: [Unicode.Scalar]] = [:]
        for (keyValue, targetValue) in dict.items {
            guard let key = codePoints(keyValue) else { throw KakasiDictionaryError.corrupt(path: path, reason: "a key is not a string") }
            // pykakasi's K2 tries two code points then one and never reads the recorded maximum.
            if key == Array("_max_key_len_".unicodeScalars), case .int = targetValue { continue }
            guard let target = codePoints(targetValue) else {
                throw KakasiDictionaryError.corrupt(path: path, reason: "the value of \(String(String.UnicodeScalarView(key))) is not a string")
            }
            table[key] = target
        }
        return table
    }
}

extension Array where Element: Equatable {
    /// Python's `needle in haystack` for strings: a contiguous run equal to `needle`.
    func containsSubsequence(_ needle: [Element]) -> Bool {
        guard needle.count <= count else { return false }
        if needle.isEmpty { return true }
        for start in 0...(count - needle.count) where self[start..<(start + needle.count)].elementsEqual(needle) { return true }
        return false
    }
}
