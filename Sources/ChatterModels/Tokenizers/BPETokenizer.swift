import Foundation

/// The subset of a Hugging Face `tokenizers` pipeline that Chatterbox's tokenizers use, reproduced
/// exactly: added tokens split out first (leftmost-longest), then a pre-tokenizer — none, the
/// `Whitespace` one (`\w+|[^\w\s]+`, Oniguruma's Unicode classes; the English `tokenizer.json`) or
/// GPT-2's `ByteLevel` (Turbo's `vocab.json` + `merges.txt`, see `ByteLevelPreTokenizer`) — and a
/// `BPE` model with ranked merges and an optional unknown token. Files that need anything else (a
/// normalizer, another pre-tokenizer, a post-processor, byte fallback, dropout, subword
/// prefixes/suffixes, added tokens with `lstrip`/`rstrip`/`single_word`) are refused with
/// `TokenizerError.unsupported` rather than tokenised differently.
///
/// Strings from the file are compared as Unicode scalar sequences, never with Swift `String`
/// equality (which treats canonically equivalent strings as equal; HF compares code points).
public struct BPETokenizer: Sendable {
    /// The file this tokenizer was read from (for messages).
    public let path: String
    /// `model.vocab` plus `added_tokens`, keyed by the token's scalars.
    let vocab: [[UInt32]: Int]
    /// id → token text (model vocab, then added tokens override, as HF's `id_to_token`).
    let tokens: [Int: String]
    /// `(left id, right id)` packed into a UInt64 → (rank, merged id).
    let merges: [UInt64: (rank: Int, id: Int)]
    let unknownID: Int?
    let fuseUnknown: Bool
    /// Added tokens by first scalar, longest first.
    let addedTokens: [UInt32: [(scalars: [UInt32], id: Int)]]
    let preTokenizer: PreTokenizer

    /// How text between added tokens is split into words before BPE.
    public enum PreTokenizer: Sendable {
        /// The whole fragment is one word.
        case none
        /// HF `Whitespace`: `\w+|[^\w\s]+`, whitespace dropped.
        case whitespace
        /// HF `ByteLevel(add_prefix_space=False, use_regex=True)`: GPT-2's regex, then each piece's
        /// UTF-8 bytes mapped to GPT-2's byte alphabet.
        case byteLevel
    }

    /// The vocabulary size (`model.vocab` and added tokens together), as `get_vocab_size()`.
    public var vocabularySize: Int { vocab.count }

    /// Reads `tokenizer.json`.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError.unreadable(path: url.path, reason: FileManager.default.fileExists(atPath: url.path) ? "\(error)" : "no such file")
        }
        try self.init(json: data, path: url.path)
    }

    /// Parses the contents of a `tokenizer.json`; `path` only names it in errors.
    public init(json data: Data, path: String) throws {
        func corrupt(_ reason: String) -> TokenizerError { .corrupt(path: path, reason: reason) }
        func unsupported(_ feature: String) -> TokenizerError { .unsupported(path: path, feature: feature) }
        func isNull(_ value: Any?) -> Bool { value == nil || value is NSNull }

        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw corrupt("the top level is not a JSON object")
            }
            root = object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw corrupt("not valid JSON (\(error.localizedDescription))")
        }

        for key in ["normalizer", "post_processor", "truncation", "padding"] where !isNull(root[key]) {
            throw unsupported("\(key) is not null")
        }
        let preTokenizer: PreTokenizer
        if let pre = root["pre_tokenizer"], !isNull(pre) {
            guard let pre = pre as? [String: Any], pre["type"] as? String == "Whitespace" else {
                throw unsupported("pre_tokenizer other than Whitespace")
            }
            preTokenizer = .whitespace
        } else {
            preTokenizer = .none
        }

        guard let model = root["model"] as? [String: Any] else { throw corrupt("no \"model\" object") }
        guard model["type"] as? String == "BPE" else {
            throw unsupported("model.type \(model["type"].map { "\($0)" } ?? "missing") (only BPE)")
        }
        if let dropout = model["dropout"], !isNull(dropout) { throw unsupported("model.dropout") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key], !isNull(value), (value as? String)?.isEmpty != true { throw unsupported("model.\(key)") }
        }
        for key in ["byte_fallback", "ignore_merges"] where (model[key] as? Bool) == true {
            throw unsupported("model.\(key)")
        }

        guard let vocabObject = model["vocab"] as? [String: Any] else { throw corrupt("no model.vocab object") }
        var vocabulary: [String: Int] = [:]
        for (token, value) in vocabObject {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else { throw corrupt("model.vocab[\"\(token)\"] is not a non-negative integer") }
            vocabulary[token] = id
        }
        var unknown: String?
        if let unk = model["unk_token"], !isNull(unk) {
            guard let unk = unk as? String else { throw corrupt("model.unk_token is not a string") }
            unknown = unk
        }
        guard let mergeList = model["merges"] as? [Any] else { throw corrupt("no model.merges array") }
        var pairs: [(String, String)] = []
        for (rank, entry) in mergeList.enumerated() {
            let parts: [String]
            if let text = entry as? String {
                parts = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let pair = entry as? [String] {
                parts = pair
            } else {
                throw corrupt("model.merges[\(rank)] is neither \"a b\" nor [a, b]")
            }
            guard parts.count == 2 else { throw corrupt("model.merges[\(rank)] is not a pair") }
            pairs.append((parts[0], parts[1]))
        }
        var added: [AddedToken] = []
        if let list = root["added_tokens"], !isNull(list) {
            guard let list = list as? [[String: Any]] else { throw corrupt("added_tokens is not an array of objects") }
            for (index, token) in list.enumerated() {
                guard let content = token["content"] as? String, !content.isEmpty,
                      let id = (token["id"] as? NSNumber)?.intValue, id >= 0 else {
                    throw corrupt("added_tokens[\(index)] lacks a content string or an id")
                }
                added.append(AddedToken(content: content, id: id, lstrip: token["lstrip"] as? Bool ?? false,
                                        rstrip: token["rstrip"] as? Bool ?? false, singleWord: token["single_word"] as? Bool ?? false))
            }
        }
        try self.init(path: path, vocabulary: vocabulary, merges: pairs, addedTokens: added, unknownToken: unknown,
                      fuseUnknown: (model["fuse_unk"] as? Bool) ?? false, preTokenizer: preTokenizer)
    }

    /// An added token as HF describes it (`AddedToken`); only the flags we reproduce may be set.
    public struct AddedToken: Sendable, Equatable {
        public var content: String
        public var id: Int
        public var lstrip = false
        public var rstrip = false
        public var singleWord = false
        public init(content: String, id: Int, lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false) {
            self.content = content
            self.id = id
            self.lstrip = lstrip
            self.rstrip = rstrip
            self.singleWord = singleWord
        }
    }

    /// A BPE model from its parts (what `tokenizer.json` holds, or `vocab.json` + `merges.txt` +
    /// added tokens); `merges` in rank order. `path` names the source in errors.
    public init(path: String, vocabulary: [String: Int], merges mergeList: [(String, String)], addedTokens addedList: [AddedToken],
                unknownToken: String? = nil, fuseUnknown: Bool = false, preTokenizer: PreTokenizer) throws {
        func corrupt(_ reason: String) -> TokenizerError { .corrupt(path: path, reason: reason) }
        var vocab: [[UInt32]: Int] = [:]
        var tokens: [Int: String] = [:]
        for (token, id) in vocabulary {
            vocab[token.unicodeScalars.map(\.value)] = id
            tokens[id] = token
        }
        guard vocab.count == vocabulary.count else { throw corrupt("the vocabulary has duplicate keys") }

        if let unk = unknownToken {
            guard let id = vocab[unk.unicodeScalars.map(\.value)] else { throw corrupt("model.unk_token \"\(unk)\" is not in model.vocab") }
            unknownID = id
        } else {
            unknownID = nil
        }

        var merges: [UInt64: (rank: Int, id: Int)] = [:]
        for (rank, (leftText, rightText)) in mergeList.enumerated() {
            let left = leftText.unicodeScalars.map(\.value), right = rightText.unicodeScalars.map(\.value)
            guard let a = vocab[left], let b = vocab[right] else {
                throw corrupt("merge \(rank) (\(leftText) \(rightText)) uses a token missing from the vocabulary")
            }
            guard let merged = vocab[left + right] else {
                throw corrupt("merge \(rank) makes \(leftText + rightText), which is missing from the vocabulary")
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if merges[key] == nil { merges[key] = (rank, merged) }
        }

        var added: [UInt32: [(scalars: [UInt32], id: Int)]] = [:]
        for token in addedList {
            guard !token.content.isEmpty else { throw corrupt("an added token (id \(token.id)) is empty") }
            for (flag, set) in [("lstrip", token.lstrip), ("rstrip", token.rstrip), ("single_word", token.singleWord)] where set {
                throw TokenizerError.unsupported(path: path, feature: "added token \(token.content) with \(flag)")
            }
            let scalars = token.content.unicodeScalars.map(\.value)
            vocab[scalars] = token.id
            tokens[token.id] = token.content
            added[scalars[0], default: []].append((scalars, token.id))
        }
        for key in added.keys { added[key]!.sort { $0.scalars.count > $1.scalars.count } }

        self.path = path
        self.vocab = vocab
        self.tokens = tokens
        self.merges = merges
        self.addedTokens = added
        self.fuseUnknown = fuseUnknown
        self.preTokenizer = preTokenizer
    }

    /// The id of a token (model vocab or added token), compared scalar by scalar.
    public func id(of token: String) -> Int? { vocab[token.unicodeScalars.map(\.value)] }

    /// The token text of an id, or nil if no token has it.
    public func token(of id: Int) -> String? { tokens[id] }

    /// `Tokenizer.encode(text).ids` (no post-processor, so no special tokens are added).
    public func encode(_ text: String) -> [Int] {
        let scalars = text.unicodeScalars.map(\.value)
        var ids: [Int] = []
        var fragmentStart = 0
        var i = 0
        while i < scalars.count {
            if let match = addedToken(in: scalars, at: i) {
                encodeFragment(scalars[fragmentStart..<i], into: &ids)
                ids.append(match.id)
                i += match.length
                fragmentStart = i
            } else {
                i += 1
            }
        }
        encodeFragment(scalars[fragmentStart..<scalars.count], into: &ids)
        return ids
    }

    /// The longest added token starting at `position` (leftmost-longest, as HF's Aho-Corasick split).
    private func addedToken(in scalars: [UInt32], at position: Int) -> (id: Int, length: Int)? {
        guard let candidates = addedTokens[scalars[position]] else { return nil }
        for candidate in candidates where position + candidate.scalars.count <= scalars.count {
            if scalars[position..<(position + candidate.scalars.count)].elementsEqual(candidate.scalars) {
                return (candidate.id, candidate.scalars.count)
            }
        }
        return nil
    }

    private func encodeFragment(_ fragment: ArraySlice<UInt32>, into ids: inout [Int]) {
        guard !fragment.isEmpty else { return }
        switch preTokenizer {
        case .none:
            encodeWord(fragment, into: &ids)
            return
        case .byteLevel:
            for piece in ByteLevelPreTokenizer.split(fragment) {
                encodeWord(ByteLevelPreTokenizer.byteSymbols(fragment[piece])[...], into: &ids)
            }
            return
        case .whitespace:
            break
        }
        // \w+|[^\w\s]+ : maximal runs of word scalars or of other non-space scalars; spaces dropped.
        var start = fragment.startIndex
        var runClass = 0  // 0: none, 1: word, 2: other
        for index in fragment.indices {
            let scalar = fragment[index]
            let cls = UnicodeClasses.isHFSpace(scalar) ? 0 : (UnicodeClasses.isHFWord(scalar) ? 1 : 2)
            if cls != runClass {
                if runClass != 0 { encodeWord(fragment[start..<index], into: &ids) }
                start = index
                runClass = cls
            }
        }
        if runClass != 0 { encodeWord(fragment[start..<fragment.endIndex], into: &ids) }
    }

    /// HF `BPE::merge_word` + `Word::merge_all`, including its priority-queue order and its check of
    /// stale queue entries (by merged id only).
    private func encodeWord(_ word: ArraySlice<UInt32>, into ids: inout [Int]) {
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var lastWasUnknown = false
        for scalar in word {
            if let id = vocab[[scalar]] {
                symbols.append(id)
                lastWasUnknown = false
            } else if let unknownID {
                if !(fuseUnknown && lastWasUnknown) { symbols.append(unknownID) }
                lastWasUnknown = true
            }
        }
        let count = symbols.count
        guard count > 1 else {
            ids.append(contentsOf: symbols)
            return
        }
        var previous = Array(-1..<(count - 1))
        var next = Array(1...count)
        next[count - 1] = -1
        var alive = [Bool](repeating: true, count: count)

        func pairKey(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        var queue = MergeQueue()
        for pos in 0..<(count - 1) {
            if let merge = merges[pairKey(symbols[pos], symbols[pos + 1])] {
                queue.push(.init(rank: merge.rank, position: pos, newID: merge.id))
            }
        }
        while let top = queue.pop() {
            let pos = top.position
            guard alive[pos], next[pos] != -1 else { continue }
            let right = next[pos]
            guard let merge = merges[pairKey(symbols[pos], symbols[right])], merge.id == top.newID else { continue }
            symbols[pos] = top.newID
            alive[right] = false
            next[pos] = next[right]
            if next[right] != -1 { previous[next[right]] = pos }
            if previous[pos] != -1, let m = merges[pairKey(symbols[previous[pos]], top.newID)] {
                queue.push(.init(rank: m.rank, position: previous[pos], newID: m.id))
            }
            if next[pos] != -1, let m = merges[pairKey(top.newID, symbols[next[pos]])] {
                queue.push(.init(rank: m.rank, position: pos, newID: m.id))
            }
        }
        var pos = 0
        while pos != -1 {
            ids.append(symbols[pos])
            pos = next[pos]
        }
    }
}

/// Min-heap on (rank, position), as HF's `BinaryHeap<Merge>` with its reversed ordering.
private struct MergeQueue {
    struct Entry {
        let rank: Int
        let position: Int
        let newID: Int
        func precedes(_ other: Entry) -> Bool {
            rank != other.rank ? rank < other.rank : position < other.position
        }
    }

    private var heap: [Entry] = []

    mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var best = parent
            if left < heap.count, heap[left].precedes(heap[best]) { best = left }
            if right < heap.count, heap[right].precedes(heap[best]) { best = right }
            if best == parent { break }
            heap.swapAt(parent, best)
            parent = best
        }
        return top
    }
}

/// Character classes of the reference libraries (see `UnicodeTables`).
enum UnicodeClasses {
    static func isHFSpace(_ scalar: UInt32) -> Bool { UnicodeTables.hfSpace.contains(scalar) }

    static func isHFWord(_ scalar: UInt32) -> Bool {
        if scalar < 0x80 { return asciiWord[Int(scalar)] }
        return contains(UnicodeTables.hfWordRanges, scalar)
    }

    /// Oniguruma's `\p{L}`.
    static func isHFLetter(_ scalar: UInt32) -> Bool { contains(UnicodeTables.hfLetterRanges, scalar) }
    /// Oniguruma's `\p{N}`.
    static func isHFNumber(_ scalar: UInt32) -> Bool { contains(UnicodeTables.hfNumberRanges, scalar) }

    /// Binary search over ascending inclusive (lo, hi) pairs.
    static func contains(_ ranges: [UInt32], _ scalar: UInt32) -> Bool {
        var low = 0, high = ranges.count / 2
        while low < high {
            let mid = (low + high) / 2
            if scalar < ranges[2 * mid] {
                high = mid
            } else if scalar > ranges[2 * mid + 1] {
                low = mid + 1
            } else {
                return true
            }
        }
        return false
    }

    private static let asciiWord: [Bool] = (0..<128).map { c in
        (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F
    }
}
