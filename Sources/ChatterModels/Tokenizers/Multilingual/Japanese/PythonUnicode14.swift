import Foundation

/// Python 3.11's `unicodedata.normalize("NFKD", …)` (Unicode 14.0). Swift's tables are newer;
/// Unicode's stability policy freezes the decomposition and combining class of every assigned
/// code point, so the only differences are code points assigned after 14.0, which Python treats
/// as unassigned: no decomposition, combining class 0. Those are passed through as they are, and
/// the text between them is decomposed by Foundation. Foundation orders combining marks before it
/// applies compatibility mappings (NFKD of "é" + U+FF9E gives e U+0301 U+3099, Python e U+3099
/// U+0301), so the canonical ordering is applied here again, over the decomposed text.
///
/// The `mtltext` branch has the same function from generated Python 3.11 tables (`PythonText.nfkd`);
/// when both are merged, this file goes and its one call in `JapaneseHiraganaNormalizer` uses that.
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
