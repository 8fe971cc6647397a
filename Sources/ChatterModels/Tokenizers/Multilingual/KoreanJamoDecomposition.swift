/// Upstream `korean_normalize`: every code point in U+AC00...U+D7AF becomes its initial, medial and
/// (when present) final conjoining jamo by the Hangul formula, then `str.strip()`.
///
/// The tokenizer runs it after NFKD, which has already decomposed the assigned syllables
/// (U+AC00...U+D7A3); the formula still applies, as upstream, to the unassigned U+D7A4...U+D7AF, which
/// come out as jamo beyond the syllable table (U+D7A4 → U+1113 U+1161).
public struct KoreanJamoDecomposition: LanguageTextProcessor {
    public init() {}

    public func process(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard (0xAC00...0xD7AF).contains(scalar.value) else {
                out.append(scalar)
                continue
            }
            let base = scalar.value - 0xAC00
            out.append(Unicode.Scalar(0x1100 + base / (21 * 28))!)
            out.append(Unicode.Scalar(0x1161 + base % (21 * 28) / 28)!)
            if base % 28 > 0 { out.append(Unicode.Scalar(0x11A7 + base % 28)!) }
        }
        return PythonText.stripped(String(out))
    }
}
