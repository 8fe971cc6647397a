/// The Python 3.11 string operations of upstream `MTLTokenizer`, on Unicode scalars (Python code
/// points) with the reference interpreter's tables (`UnicodeTables`, Unicode 14.0). Swift's own
/// `lowercased()` and Foundation's NFKD use newer Unicode data and differ from Python on some code points
/// (and `lowercased()` has no Final_Sigma rule), so neither is used.
public enum PythonText {
    /// `str.lower()`: full case mapping per code point (U+0130 becomes two), and U+03A3 → U+03C2 in
    /// CPython's Final_Sigma context (a cased letter before it and none after it, case-ignorable code
    /// points skipped both ways), else U+03C3.
    public static func lowercased(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        for (index, scalar) in scalars.enumerated() {
            if scalar.value == 0x3A3 {
                out.append(isFinalSigma(at: index, in: scalars) ? "\u{3C2}" : "\u{3C3}")
            } else if let lower = lowercaseMapping[scalar.value] {
                out.append(contentsOf: lower)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// `unicodedata.normalize("NFKD", text)`: each code point fully decomposed (Hangul syllables
    /// algorithmically), then every run of non-zero combining classes stably sorted by class.
    public static func nfkd(_ text: String) -> String {
        var decomposed: [Unicode.Scalar] = []
        decomposed.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if (hangulFirst...hangulLast).contains(value) {
                let index = value - hangulFirst
                decomposed.append(Unicode.Scalar(0x1100 + index / 588)!)
                decomposed.append(Unicode.Scalar(0x1161 + index % 588 / 28)!)
                if index % 28 > 0 { decomposed.append(Unicode.Scalar(0x11A7 + index % 28)!) }
            } else if let parts = compatibilityDecomposition[value] {
                decomposed.append(contentsOf: parts)
            } else {
                decomposed.append(scalar)
            }
        }
        // Canonical ordering: stable insertion sort inside each run of non-starters.
        var i = 1
        while i < decomposed.count {
            let classOfI = combiningClass(decomposed[i])
            if classOfI != 0 {
                var j = i
                while j > 0, combiningClass(decomposed[j - 1]) > classOfI {
                    decomposed.swapAt(j - 1, j)
                    j -= 1
                }
            }
            i += 1
        }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: decomposed)
        return String(out)
    }

    /// `str.strip()` with no argument: Python whitespace (`str.isspace`) removed from both ends.
    public static func stripped(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
              let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[first...last])
        return String(out)
    }

    /// `str.isspace()` of one code point.
    public static func isSpace(_ scalar: Unicode.Scalar) -> Bool { UnicodeTables.pythonSpace.contains(scalar.value) }

    /// `unicodedata.category(c) == "Lo"`.
    public static func isOtherLetter(_ scalar: Unicode.Scalar) -> Bool {
        UnicodeClasses.contains(UnicodeTables.pythonOtherLetterRanges, scalar.value)
    }

    // MARK: - Tables

    private static let hangulFirst: UInt32 = 0xAC00, hangulLast: UInt32 = 0xD7A3

    /// CPython's `handle_capital_sigma`.
    private static func isFinalSigma(at index: Int, in scalars: [Unicode.Scalar]) -> Bool {
        var j = index - 1
        while j >= 0, isCaseIgnorable(scalars[j]) { j -= 1 }
        guard j >= 0, isCased(scalars[j]) else { return false }
        j = index + 1
        while j < scalars.count, isCaseIgnorable(scalars[j]) { j += 1 }
        return j == scalars.count || !isCased(scalars[j])
    }

    /// `Cased` for the code points that are not `Case_Ignorable` (the only ones the rule asks about).
    private static func isCased(_ scalar: Unicode.Scalar) -> Bool {
        UnicodeClasses.contains(UnicodeTables.pythonCasedRanges, scalar.value)
    }

    private static func isCaseIgnorable(_ scalar: Unicode.Scalar) -> Bool {
        UnicodeClasses.contains(UnicodeTables.pythonCaseIgnorableRanges, scalar.value)
    }

    private static func combiningClass(_ scalar: Unicode.Scalar) -> UInt32 { combiningClasses[scalar.value] ?? 0 }

    private static let lowercaseMapping = records(UnicodeTables.pythonLowercase)
    private static let compatibilityDecomposition = records(UnicodeTables.pythonCompatibilityDecompositions)
    private static let combiningClasses: [UInt32: UInt32] = {
        let flat = UnicodeTables.pythonCombiningClasses
        return Dictionary(uniqueKeysWithValues: stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) })
    }()

    /// Flat `cp, n, value[0..<n]` records → cp → scalars.
    private static func records(_ flat: [UInt32]) -> [UInt32: [Unicode.Scalar]] {
        var table: [UInt32: [Unicode.Scalar]] = [:]
        var i = 0
        while i < flat.count {
            let n = Int(flat[i + 1])
            table[flat[i]] = flat[(i + 2)..<(i + 2 + n)].compactMap(Unicode.Scalar.init)
            i += 2 + n
        }
        return table
    }
}
