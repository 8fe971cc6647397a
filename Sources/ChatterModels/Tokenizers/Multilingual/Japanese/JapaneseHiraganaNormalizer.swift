import Foundation

/// Upstream's Japanese step of `MTLTokenizer.encode`, `hiragana_normalize`
/// (`chatterbox/models/tokenizers/tokenizer.py`, identical in the 0.1.7 wheel and at upstream
/// 5de7a54), as its default install runs it: with pykakasi 2.3.0, whose output the multilingual
/// model was trained on. For each segment of `pykakasi.kakasi().convert(text)`:
/// - a segment whose original text holds a CJK unified ideograph (U+4E00–U+9FFF) becomes its
///   hiragana, with a space in front of a reading that starts with は or へ;
/// - any other segment (kana, Latin, symbols, unknown kanji outside that block) stays as written;
/// and the joined text is NFKD-normalised with Python 3.11's Unicode 14 data.
///
/// The dictionaries come from pykakasi 2.3.0's wheel (GPL-3.0-or-later, never committed):
/// `tools/kakasi/fetch-dictionaries.sh` fetches them; `KakasiDictionaryLocation` finds them.
public struct JapaneseHiraganaNormalizer: Sendable {
    let converter: KakasiConverter

    /// Loads `kanwadict4.db`, `itaijidict4.db` and `halfkana3.db` from `dictionaryDirectory`
    /// (about 1 s in a release build: the kanwa dictionary has 300 000 words).
    /// - Throws: `KakasiDictionaryError` when a file is missing, unreadable or not pykakasi's.
    public init(dictionaryDirectory: URL) throws {
        converter = KakasiConverter(dictionaries: try KakasiDictionaries(directory: dictionaryDirectory))
    }

    /// Exactly upstream `hiragana_normalize(text)`, its final NFKD included.
    ///
    /// Where pykakasi 2.3.0 itself raises (`IndexError`, for a text ending in a variation selector
    /// U+FE00/FE01 or U+E0100… that follows no kanji), upstream's tokenizer fails; here the text
    /// is returned NFKD-normalised but otherwise unchanged, as upstream's path without pykakasi
    /// would. `normalizedOrFailure` tells the two apart.
    public func process(_ text: String) -> String {
        switch normalizedOrFailure(text) {
        case let .success(normalized): return normalized
        case .failure: return PythonUnicode14.nfkd(text)
        }
    }

    /// `hiragana_normalize(text)`, or why pykakasi 2.3.0 would raise on it.
    public func normalizedOrFailure(_ text: String) -> Result<String, KakasiConversionFailure> {
        let segments: [KakasiSegment]
        do { segments = try converter.convert(Array(text.unicodeScalars)) } catch let failure as KakasiConversionFailure {
            return .failure(failure)
        } catch {
            preconditionFailure("KakasiConverter.convert throws only KakasiConversionFailure, got \(error)")
        }
        var out = String.UnicodeScalarView()
        for segment in segments {
            if segment.original.contains(where: Self.isUpstreamKanji) {
                let hiragana = converter.hiragana(from: segment.kana)
                if let first = hiragana.first, first == "\u{306F}" || first == "\u{3078}" {  // は, へ
                    out.append(" ")
                }
                out.append(contentsOf: hiragana)
            } else {
                out.append(contentsOf: segment.original)
            }
        }
        return .success(PythonUnicode14.nfkd(String(out)))
    }

    /// Upstream's `is_kanji`: 19968 <= ord(c) <= 40959.
    static func isUpstreamKanji(_ scalar: Unicode.Scalar) -> Bool { (0x4E00...0x9FFF).contains(scalar.value) }
}

/// Python 3.11's `unicodedata.normalize("NFKD", …)` (Unicode 14.0). Swift's tables are newer;
/// Unicode's stability policy freezes the decomposition and combining class of every assigned
/// code point, so the only differences are code points assigned after 14.0, which Python treats
/// as unassigned: no decomposition, combining class 0. Those are passed through as they are, and
/// the text between them is decomposed by Foundation. Foundation orders combining marks before it
/// applies compatibility mappings (NFKD of "é" + U+FF9E gives e U+0301 U+3099, Python e U+3099
/// U+0301), so the canonical ordering is applied here again, over the decomposed text.
enum PythonUnicode14 {
    static func isAssignedInUnicode14(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < 14 || (age.major == 14 && age.minor == 0)
    }

    static func combiningClass(_ scalar: Unicode.Scalar) -> UInt8 {
        isAssignedInUnicode14(scalar) ? scalar.properties.canonicalCombiningClass.rawValue : 0
    }

    static func nfkd(_ text: String) -> String {
        var decomposed: [Unicode.Scalar] = []
        var run = String.UnicodeScalarView()
        func flushRun() {
            if !run.isEmpty {
                decomposed += String(run).decomposedStringWithCompatibilityMapping.unicodeScalars
                run = String.UnicodeScalarView()
            }
        }
        for scalar in text.unicodeScalars {
            if isAssignedInUnicode14(scalar) {
                run.append(scalar)
            } else {
                flushRun()
                decomposed.append(scalar)
            }
        }
        flushRun()
        // Canonical ordering: each run of non-starters sorted by combining class, stably.
        var start = 0
        while start < decomposed.count {
            guard combiningClass(decomposed[start]) != 0 else { start += 1; continue }
            var end = start
            while end < decomposed.count, combiningClass(decomposed[end]) != 0 { end += 1 }
            if end - start > 1 {
                let sorted = decomposed[start..<end].enumerated().sorted {
                    (combiningClass($0.element), $0.offset) < (combiningClass($1.element), $1.offset)
                }.map(\.element)
                decomposed.replaceSubrange(start..<end, with: sorted)
            }
            start = end
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: decomposed)
        return String(out)
    }
}
