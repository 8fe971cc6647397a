/// One segment of pykakasi's `convert` output, as `hiragana_normalize` reads it: the original
/// code points (`orig`) and the kana pykakasi buffered for them, from which `hira` is derived.
struct KakasiSegment: Equatable, Sendable {
    let original: [Unicode.Scalar]
    let kana: [Unicode.Scalar]
}

/// Where pykakasi 2.3.0 itself raises `IndexError` (variation selectors with nothing convertible
/// after them, or more after a match than its bookkeeping allows); upstream's `hiragana_normalize`
/// does not catch it, so upstream cannot tokenise the text.
public struct KakasiConversionFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The code point offset in the text where pykakasi's lookup fails.
    public let offset: Int
    public let reason: String
    public var description: String { "pykakasi 2.3.0 raises IndexError at code point \(offset): \(reason)" }
}

/// A port of pykakasi 2.3.0's `Kakasi.convert` (`kakasi.py`), its kanji lookup `JConv.convert`
/// (`kanji.py`) and the katakana→hiragana step of `IConv.convert` (`scripts.py`, `K2.convert_h`),
/// code point for code point, including the behaviours the Chatterbox multilingual model was
/// trained on:
/// - a character outside every script class (newline, tab, most symbols) flushes the buffer
///   without clearing it, so the buffered segment is emitted again later;
/// - private-use and astral characters (emoji) are dropped, also without clearing the buffer;
/// - a kanji with no reading is emitted with an empty reading, and the character after it is
///   skipped;
/// - the condition on a reading is tested against the whole text buffered before the kanji;
/// - the variation-selector bookkeeping after a match (`num_vs`) counts every selector to the end
///   of the text and only recognises U+FE00–FE02 (pykakasi's range for the supplementary
///   selectors is written `0x0E0100…0x0E1EF`, which is empty).
struct KakasiConverter: Sendable {
    let dictionaries: KakasiDictionaries

    private enum ScriptClass { case kanji, kana, hiragana, symbol, alpha }

    private enum Action {
        case flushAndBufferCurrent  // BUFOUT_AND_NEXT
        case appendCurrent  // PUT_AND_NEXT
        case flushThenEmitCurrent  // NOBUFOUT_AND_OUTPUT_CURRENT_AND_NEXT
        case flushAndSkipNext  // BUFOUT_AND_SKIP_CURRENT
        case nothing  // DO_NOTHING
    }

    // Ch.endmark and Ch.long_symbols of properties.py.
    private static let endMarks: Set<UInt32> = [0x29, 0x5D, 0x21, 0x2C, 0x2E, 0x3001, 0x3002, 0xFF1F, 0xFF10, 0xFF1E, 0xFF1C]
    private static let longSymbols: Set<UInt32> = [0x30FC, 0x2015, 0x2212, 0xFF70]

    static func isKatakanaRegion(_ c: UInt32) -> Bool {  // K2.isRegion
        (0x30A0 < c && c < 0x30FD) || isHalfWidthKana(c) || (0x1B164...0x1B167).contains(c)
    }
    static func isHalfWidthKana(_ c: UInt32) -> Bool { 0xFF65 < c && c < 0xFF9F }
    static func isHiraganaRegion(_ c: UInt32) -> Bool { (0x3040 < c && c < 0x3097) || (0x1B150...0x1B152).contains(c) }  // H2.isRegion
    static func isAlphaRegion(_ c: UInt32) -> Bool { 0x20 <= c && c < 0x7F }  // A2.isRegion

    /// Sym2.isRegion, with its constants as written: `greece_Rho` is 0x30A1 (so U+0391…U+30A1 is
    /// all "symbol") and the `greece_Sigma…greece_Omega` range (0x30A3…0x03A9) is empty.
    static func isSymbolRegion(_ c: UInt32) -> Bool {
        (0x3000...0x3020).contains(c) || (0x3030...0x303F).contains(c) || (0x0391...0x30A1).contains(c)
            || (0x03B1...0x03C9).contains(c) || (0x0410...0x044F).contains(c) || (0xFF01...0xFF1A).contains(c)
            || (0x00A1...0x00FF).contains(c) || (0xFF20...0xFF5E).contains(c) || c == 0x0451 || c == 0x0401
    }

    func isKanjiRegion(_ scalar: Unicode.Scalar) -> Bool {  // JConv.isRegion
        (0x3400..<0xE000).contains(scalar.value) || dictionaries.itaiji.keys.contains(scalar)
    }

    static func isPrivateUseOrAstral(_ c: UInt32) -> Bool { (0xF000...0xFFFD).contains(c) || (0x10000...0x10FFFD).contains(c) }

    /// `Kakasi.convert(text)`: the segments in order (an empty text gives one empty segment).
    func convert(_ text: [Unicode.Scalar]) throws -> [KakasiSegment] {
        if text.isEmpty { return [KakasiSegment(original: [], kana: [])] }
        let translation = ItaijiTranslation(text, table: dictionaries.itaiji)

        var original: [Unicode.Scalar] = []
        var kana: [Unicode.Scalar] = []
        var result: [KakasiSegment] = []
        var i = 0
        var previous = ScriptClass.kanji

        func flushIfBuffered() {
            if !original.isEmpty { result.append(KakasiSegment(original: original, kana: kana)) }
        }

        while i < text.count {
            let c = text[i].value
            let action: Action
            if Self.endMarks.contains(c) {
                previous = .symbol
                action = .flushAndBufferCurrent
            } else if Self.longSymbols.contains(c) {
                action = .appendCurrent  // follows the previous character's class
            } else if Self.isKatakanaRegion(c) {
                action = previous == .kana ? .appendCurrent : .flushAndBufferCurrent
                previous = .kana
            } else if Self.isHiraganaRegion(c) {
                action = previous == .hiragana ? .appendCurrent : .flushAndBufferCurrent
                previous = .hiragana
            } else if Self.isAlphaRegion(c) {
                action = previous == .alpha ? .appendCurrent : .flushAndBufferCurrent
                previous = .alpha
            } else if Self.isSymbolRegion(c) {
                action = previous != .symbol ? .flushAndBufferCurrent : .flushThenEmitCurrent
                previous = .symbol
            } else if isKanjiRegion(text[i]) {
                flushIfBuffered()
                let (reading, length) = try lookUpKanji(in: text, at: i, translation: translation, buffered: original)
                previous = .kanji
                if length > 0 {
                    original = Array(text[i..<min(i + length, text.count)])
                    kana = reading
                    i += length
                    action = .nothing
                } else {
                    original = [text[i]]
                    kana = []
                    i += 1
                    action = .flushAndSkipNext
                }
            } else if Self.isPrivateUseOrAstral(c) {
                previous = .symbol
                flushIfBuffered()  // and the buffer is kept: it will be emitted again
                i += 1
                action = .nothing
            } else {
                flushIfBuffered()  // and the buffer is kept: it will be emitted again
                result.append(KakasiSegment(original: [text[i]], kana: []))
                i += 1
                action = .nothing
            }

            switch action {
            case .flushAndBufferCurrent:
                flushIfBuffered()
                original = [text[i]]
                kana = [text[i]]
                i += 1
            case .appendCurrent:
                original.append(text[i])
                kana.append(text[i])
                i += 1
            case .flushThenEmitCurrent:
                flushIfBuffered()
                result.append(KakasiSegment(original: [text[i]], kana: [text[i]]))
                original = []
                kana = []
                i += 1
            case .flushAndSkipNext:
                flushIfBuffered()
                original = []
                kana = []
                i += 1
            case .nothing:
                break
            }
        }
        flushIfBuffered()
        return result
    }

    /// `JConv.convert(text[start:], buffered)`: the reading of the longest dictionary word at
    /// `start` (after itaiji translation) whose condition accepts the buffered text, and how many
    /// code points of the untranslated text it covers; length 0 when there is none.
    private func lookUpKanji(in text: [Unicode.Scalar], at start: Int, translation: ItaijiTranslation,
                             buffered: [Unicode.Scalar]) throws -> ([Unicode.Scalar], Int)
    {
        let original = text[start...]  // itext
        let translated = translation.suffix(from: start)  // text
        let selectorCount = original.count - translated.count  // num_vs
        guard let first = translated.first else {
            throw KakasiConversionFailure(offset: start, reason: "only characters pykakasi deletes (variation selectors) from here on")
        }
        guard let table = dictionaries.kanwa[first] else { return ([], 0) }

        var reading: [Unicode.Scalar] = []
        var length = 0
        var wordLength = min(dictionaries.kanwaLongestWord[first] ?? 0, translated.count)
        search: while wordLength > 0 {
            if let readings = table[Array(translated.prefix(wordLength))] {
                for candidate in readings where candidate.accepts(buffer: buffered) {
                    reading = candidate.reading
                    length = wordLength
                    break search
                }
            }
            wordLength -= 1
        }

        // Python's negative indexing: index -1 is the last code point.
        func at<C: RandomAccessCollection>(_ collection: C, _ index: Int) -> C.Element? where C.Index == Int {
            let resolved = index < 0 ? collection.count + index : index
            guard resolved >= 0, resolved < collection.count else { return nil }
            return collection[collection.startIndex + resolved]
        }
        // Negative when an itaiji entry expands to several code points (none in pykakasi's file): Python's range is then empty.
        for _ in 0..<max(0, selectorCount) {
            if length > original.count { break }
            guard let translatedScalar = at(translated, length - 1), let originalScalar = at(original, length - 1) else {
                throw KakasiConversionFailure(offset: start, reason: "variation-selector bookkeeping indexes past the translated text")
            }
            if translatedScalar != originalScalar {
                length += 1
            } else if length < original.count, Self.isCountedVariationSelector(original[original.startIndex + length].value) {
                length += 1
            }
        }
        return (reading, length)
    }

    /// `JConv._is_vschr` as written: `0x0E0100 <= c <= 0x0E1EF` is an empty range.
    static func isCountedVariationSelector(_ c: UInt32) -> Bool { (0xFE00...0xFE02).contains(c) }

    /// `IConv._k2h`: katakana (full- and half-width) to hiragana, in pykakasi's 32-code-point windows.
    func hiragana(from kana: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let window = 32
        var result: [Unicode.Scalar] = []
        var i = 0
        while i < kana.count {
            let (converted, length) = katakanaToHiragana(kana[i..<min(i + window, kana.count)])
            if length > 0 {
                result += converted
                i += length
            } else {
                result.append(kana[i])
                i += 1
            }
        }
        return result
    }

    /// `K2.convert_h`: converts the leading run of katakana; stops at the first other code point.
    private func katakanaToHiragana(_ text: ArraySlice<Unicode.Scalar>) -> ([Unicode.Scalar], Int) {
        let toHiragana: UInt32 = 0x30A1 - 0x3041
        let smallKanaOffset: UInt32 = 0x1B164 - 0x1B150
        var result: [Unicode.Scalar] = []
        var length = 0
        var x = text.startIndex
        while x < text.endIndex {
            let c = text[x].value
            if (0x1B164..<0x1B167).contains(c) {
                result.append(Unicode.Scalar(c - smallKanaOffset)!)
                length += 1; x += 1
            } else if c == 0x1B167 {
                result.append("\u{3093}")
                length += 1; x += 1
            } else if 0x30A0 < c && c < 0x30F7 {
                result.append(Unicode.Scalar(c - toHiragana)!)
                length += 1; x += 1
            } else if 0x30F7 <= c && c < 0x30FD {
                result.append(text[x])
                length += 1; x += 1
            } else if Self.isHalfWidthKana(c) {
                // K2._convert_half_kana: the first two code points, then one, looked up in halfkana3.db.
                // It reports the length it asked for, so a lone last code point counts as two (and
                // `hiragana(from:)` then skips the first code point of the next window), as in pykakasi.
                let rest = text[x...]
                let match = [2, 1].lazy.compactMap { n in self.dictionaries.halfKana[Array(rest.prefix(n))].map { (fullWidth: $0, length: n) } }.first
                if let match, match.fullWidth.count == 1, let converted = match.fullWidth.first {
                    length += match.length
                    x += match.length
                    // ゛ stays; anything else moves down from katakana (pykakasi's dictionary maps to
                    // katakana and 、。「」・ only, all above the offset; a corrupt one cannot underflow here).
                    let shifted = converted.value >= toHiragana ? Unicode.Scalar(converted.value - toHiragana) : nil
                    result.append(converted.value == 0x309B ? converted : shifted ?? converted)
                } else {
                    length += 1  // unknown half-width kana are dropped (pykakasi issue #115)
                    x += 1
                }
            } else {
                break
            }
        }
        return (result, length)
    }
}

/// pykakasi's `str.translate(itaijidict)` of every suffix of a text, computed once: the
/// translation of `text[i:]` is the translation of the whole text from where code point `i`'s lands.
struct ItaijiTranslation {
    private let translated: [Unicode.Scalar]
    private let startOfSource: [Int]

    init(_ text: [Unicode.Scalar], table: [Unicode.Scalar: [Unicode.Scalar]?]) {
        var translated: [Unicode.Scalar] = []
        var starts: [Int] = []
        translated.reserveCapacity(text.count)
        starts.reserveCapacity(text.count)
        for scalar in text {
            starts.append(translated.count)
            if let mapped = table[scalar] {
                if let replacement = mapped { translated += replacement }
            } else {
                translated.append(scalar)
            }
        }
        self.translated = translated
        self.startOfSource = starts
    }

    func suffix(from index: Int) -> ArraySlice<Unicode.Scalar> { translated[startOfSource[index]...] }
}
