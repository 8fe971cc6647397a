import Foundation

/// Splits long text into pieces of at most `maxCharacters` at sentence boundaries (then clause
/// boundaries, then spaces, then anywhere), so each piece fits T3's text window and the pieces are
/// spoken as one stream. No character is dropped except the whitespace between pieces.
struct TextSplitter {
    let maxCharacters: Int

    func pieces(_ text: String) -> [String] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return [] }
        var pieces: [String] = []
        var current = ""
        for sentence in Self.sentences(trimmed) {
            for part in split(sentence) {
                if current.isEmpty {
                    current = part
                } else if current.count + 1 + part.count <= maxCharacters {
                    current += " " + part
                } else {
                    pieces.append(current)
                    current = part
                }
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    /// Sentences: runs ending in . ! ? … (with closing quotes/brackets), whitespace trimmed.
    static func sentences(_ text: String) -> [String] {
        var out: [String] = [], current = ""
        let enders: Set<Character> = [".", "!", "?", "…", "。", "！", "？"]
        let closers: Set<Character> = ["\"", "'", "”", "’", ")", "]", "»"]
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            current.append(c)
            if enders.contains(c) {
                while let next = chars.first, enders.contains(next) || closers.contains(next) { current.append(chars.removeFirst()) }
                if chars.first.map({ $0.isWhitespace }) ?? true {
                    let s = current.trimmingCharacters(in: .whitespacesAndNewlines)
                    if !s.isEmpty { out.append(s) }
                    current = ""
                }
            }
        }
        let s = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !s.isEmpty { out.append(s) }
        return out
    }

    /// A sentence longer than the limit, cut at the last clause mark or space before it.
    private func split(_ sentence: String) -> [String] {
        var rest = Substring(sentence), out: [String] = []
        while rest.count > maxCharacters {
            let window = rest.prefix(maxCharacters)
            let cut = window.lastIndex(where: { ",;:—–".contains($0) }).map { rest.index(after: $0) }
                ?? window.lastIndex(where: { $0.isWhitespace })
                ?? window.endIndex
            let head = rest[..<cut].trimmingCharacters(in: .whitespaces)
            if !head.isEmpty { out.append(head) }
            rest = rest[cut...].drop(while: { $0.isWhitespace })
        }
        if !rest.isEmpty { out.append(String(rest)) }
        return out
    }
}
