/// HF `tokenizers`' `ByteLevel` pre-tokenizer as GPT-2 (and Turbo) use it (`add_prefix_space=False`,
/// `use_regex=True`): the text is split by GPT-2's regex
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// run by Oniguruma (classes from `UnicodeTables`, probed from the reference library), and each
/// piece's UTF-8 bytes become GPT-2's printable byte alphabet (`bytes_to_unicode`).
///
/// The regex is matched by hand, alternative by alternative in its order, which is what a
/// backtracking engine does with it; every scalar belongs to some alternative, so the pieces tile
/// the text.
enum ByteLevelPreTokenizer {
    /// The pieces of `text` (index ranges into it), in order.
    static func split(_ text: ArraySlice<UInt32>) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var i = text.startIndex
        let end = text.endIndex
        let space: UInt32 = 0x20, apostrophe: UInt32 = 0x27
        func isSpace(_ c: UInt32) -> Bool { UnicodeClasses.isHFSpace(c) }
        func isLetter(_ c: UInt32) -> Bool { UnicodeClasses.isHFLetter(c) }
        func isNumber(_ c: UInt32) -> Bool { UnicodeClasses.isHFNumber(c) }
        func isOther(_ c: UInt32) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
        /// End of ` ?X+` at `i` for the class `member`, or nil.
        func optionalSpaceRun(_ member: (UInt32) -> Bool) -> Int? {
            var j = i
            if text[j] == space, j + 1 < end, member(text[j + 1]) { j += 1 }
            guard member(text[j]) else { return nil }
            while j < end, member(text[j]) { j += 1 }
            return j
        }
        while i < end {
            var match: Int?
            // 's|'t|'re|'ve|'m|'ll|'d (ASCII, case-sensitive)
            if text[i] == apostrophe, i + 1 < end {
                let a = text[i + 1], b: UInt32? = i + 2 < end ? text[i + 2] : nil
                switch a {
                case 0x73, 0x74, 0x6D, 0x64: match = i + 2                            // s t m d
                case 0x72 where b == 0x65, 0x76 where b == 0x65, 0x6C where b == 0x6C:   // re ve ll
                    match = i + 3
                default: break
                }
            }
            if match == nil { match = optionalSpaceRun(isLetter) }
            if match == nil { match = optionalSpaceRun(isNumber) }
            if match == nil { match = optionalSpaceRun(isOther) }
            if match == nil, isSpace(text[i]) {
                var j = i
                while j < end, isSpace(text[j]) { j += 1 }
                // \s+(?!\S): the whole run at the end of the text, else all but its last space
                // (which then starts the next piece); a single space before \S falls to \s+.
                match = j == end ? j : (j - 1 > i ? j - 1 : j)
            }
            let next = match ?? i + 1
            pieces.append(i..<next)
            i = next
        }
        return pieces
    }

    /// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 bytes to
    /// U+0100 upwards in byte order.
    static let byteToScalar: [UInt32] = {
        let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var table = [UInt32](repeating: 0, count: 256)
        for b in printable { table[b] = UInt32(b) }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) {
            table[b] = next
            next += 1
        }
        return table
    }()

    /// The byte-alphabet scalars of `piece`'s UTF-8 encoding.
    static func byteSymbols(_ piece: ArraySlice<UInt32>) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(piece.count * 2)
        func emit(_ byte: UInt32) { out.append(byteToScalar[Int(byte)]) }
        for v in piece {  // UTF-8 (scalars come from a String: no surrogates)
            if v < 0x80 {
                emit(v)
            } else if v < 0x800 {
                emit(0xC0 | v >> 6); emit(0x80 | v & 0x3F)
            } else if v < 0x10000 {
                emit(0xE0 | v >> 12); emit(0x80 | v >> 6 & 0x3F); emit(0x80 | v & 0x3F)
            } else {
                emit(0xF0 | v >> 18); emit(0x80 | v >> 12 & 0x3F); emit(0x80 | v >> 6 & 0x3F); emit(0x80 | v & 0x3F)
            }
        }
        return out
    }
}
