/// Upstream's text clean-up before tokenisation (`punc_norm` of the original and of Turbo).
///
/// Everything works on Unicode scalars (Python code points), never on Swift `Character`s: upstream
/// indexes, splits and replaces code points, and grapheme clusters would merge e.g. a combining mark
/// into the preceding comma. Character classes come from the reference Python's tables
/// (`UnicodeTables`), not from Swift's newer ones.
public enum TextNormalization {
    /// What upstream substitutes for an empty text.
    public static let emptyTextReplacement = "You need to add some text for me to talk."

    /// `punc_norm` of the original English model (`chatterbox/tts.py`), exactly:
    /// 1. empty text → `emptyTextReplacement`;
    /// 2. a lowercase first code point (`str.islower`) is replaced by its `str.upper()` (may be several);
    /// 3. `" ".join(text.split())`: runs of Python whitespace become one space, ends stripped;
    /// 4. the literal replacements of `originalReplacements`, in order, each over the whole text;
    /// 5. trailing ASCII spaces stripped; `.` appended unless the text ends with `. ! ? - ,`.
    ///
    /// Note (code over spec): a text of whitespace only is not "empty" to step 1, so it comes out
    /// as `"."`, as upstream.
    public static func puncNorm(_ text: String) -> String { puncNorm(text, replacements: originalReplacements) }

    /// Turbo's `punc_norm` (`chatterbox/tts_turbo.py`): the same steps with `turboReplacements`
    /// (no `...`, `" - "` or `;` rules).
    public static func turboPuncNorm(_ text: String) -> String { puncNorm(text, replacements: turboReplacements) }

    /// `punc_norm` of the multilingual model (`chatterbox/mtl_tts.py`, 0.1.7 and 5de7a54 alike): the
    /// original's steps and replacements, with `、，。？！` also ending a sentence.
    public static func multilingualPuncNorm(_ text: String) -> String {
        puncNorm(text, replacements: originalReplacements, sentenceEnders: multilingualSentenceEnders)
    }

    static let sentenceEnders: Set<Unicode.Scalar> = [".", "!", "?", "-", ","]
    static let multilingualSentenceEnders = sentenceEnders.union(["\u{3001}", "\u{FF0C}", "\u{3002}", "\u{FF1F}", "\u{FF01}"])  // 、，。？！

    static func puncNorm(_ text: String, replacements: [(String, String)], sentenceEnders: Set<Unicode.Scalar> = sentenceEnders) -> String {
        var scalars = Array(text.unicodeScalars)
        if scalars.isEmpty { return emptyTextReplacement }

        if let upper = pythonUpperIfLower(scalars[0]) {
            scalars.replaceSubrange(0..<1, with: upper)
        }

        scalars = collapsePythonWhitespace(scalars)

        for (old, new) in replacements {
            scalars = replacingAll(Array(old.unicodeScalars), with: Array(new.unicodeScalars), in: scalars)
        }

        while scalars.last == " " { scalars.removeLast() }
        if !(scalars.last.map(sentenceEnders.contains) ?? false) { scalars.append(".") }

        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }

    /// `punc_to_replace` of upstream `tts.py`, in order (later pairs see earlier output).
    public static let originalReplacements: [(String, String)] = [
        ("...", ", "),
        ("\u{2026}", ", "),  // …
        (":", ","),
        (" - ", ", "),
        (";", ", "),
        ("\u{2014}", "-"),  // —
        ("\u{2013}", "-"),  // –
        (" ,", ","),
        ("\u{201C}", "\""),  // “
        ("\u{201D}", "\""),  // ”
        ("\u{2018}", "'"),  // ‘
        ("\u{2019}", "'"),  // ’
    ]

    /// `punc_to_replace` of upstream `tts_turbo.py`, in order.
    public static let turboReplacements: [(String, String)] = [
        ("\u{2026}", ", "),  // …
        (":", ","),
        ("\u{2014}", "-"),  // —
        ("\u{2013}", "-"),  // –
        (" ,", ","),
        ("\u{201C}", "\""),  // “
        ("\u{201D}", "\""),  // ”
        ("\u{2018}", "'"),  // ‘
        ("\u{2019}", "'"),  // ’
    ]

    // MARK: - Python str semantics

    /// `c.upper()` when `c.islower()` (Python's tables), else nil.
    static func pythonUpperIfLower(_ scalar: Unicode.Scalar) -> [Unicode.Scalar]? {
        guard let upper = lowerToUpper[scalar.value] else { return nil }
        return upper.compactMap(Unicode.Scalar.init)
    }

    private static let lowerToUpper: [UInt32: [UInt32]] = {
        let flat = UnicodeTables.pythonLowerToUpper
        var table: [UInt32: [UInt32]] = [:]
        var i = 0
        while i < flat.count {
            let n = Int(flat[i + 1])
            table[flat[i]] = Array(flat[(i + 2)..<(i + 2 + n)])
            i += 2 + n
        }
        return table
    }()

    /// `" ".join(text.split())` with Python's `str.isspace`.
    static func collapsePythonWhitespace(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        var pendingSpace = false
        for scalar in scalars {
            if UnicodeTables.pythonSpace.contains(scalar.value) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(scalar)
            }
        }
        return out
    }

    /// Python `str.replace(old, new)`: non-overlapping matches, left to right.
    static func replacingAll(_ old: [Unicode.Scalar], with new: [Unicode.Scalar], in text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard !old.isEmpty, text.count >= old.count else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == old[0], i + old.count <= text.count, text[i..<(i + old.count)].elementsEqual(old) {
                out.append(contentsOf: new)
                i += old.count
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }
}
