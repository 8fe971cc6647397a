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
    /// Where pykakasi 2.3.0 itself raises (`IndexError`, for variation selectors U+FE00/FE01 or
    /// U+E0100… it cannot account for: at the end of a text after kana, or two after a kanji),
    /// upstream's tokenizer fails; here the text is returned NFKD-normalised but otherwise
    /// unchanged, as upstream's path without pykakasi would. `normalizedOrFailure` tells the two apart.
    public func process(_ text: String) -> String {
        switch normalizedOrFailure(text) {
        case let .success(normalized): return normalized
        case .failure: return PythonText.nfkd(text)
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
        return .success(PythonText.nfkd(String(out)))
    }

    /// Upstream's `is_kanji`: 19968 <= ord(c) <= 40959.
    static func isUpstreamKanji(_ scalar: Unicode.Scalar) -> Bool { (0x4E00...0x9FFF).contains(scalar.value) }
}
