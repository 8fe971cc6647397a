import Foundation

/// spacy-pkuseg 1.0.2's `pkuseg(...).cut(text)`, ported step by step from its sources
/// (`spacy_pkuseg/__init__.py`, `feature_extractor.pyx`, `inference.pyx`), on code points as Python
/// sees them:
/// 1. `text.strip()`, then `split()` on Python whitespace runs: pkuseg never sees whitespace;
/// 2. each piece through the user dictionary (`Preprocesser.solve`): its words are kept whole;
/// 3. every other stretch through the CRF (`_cut`): characters normalised (the keywords `-._,|/*:`
///    become `&`, digits and Chinese numerals `**Num`, full-width letters `**Letter`), node features
///    looked up (`__get_node_features_idx`, in its order: the order weights are summed in), the
///    Viterbi path decoded (`run_viterbi`, ties as it breaks them), words cut before each tag whose
///    name contains "B";
/// 4. the CRF's words through the post-processing (`Postprocesser`): runs of 7 down to 2 words whose
///    concatenation is in the word list (`dicts/default.pkl`) are merged unless each of them is in
///    the list already.
/// Upstream's default (`pkuseg()`, what chatterbox's `ChineseCangjieConverter` builds) has an empty
/// user dictionary and `default.pkl` as the word list.
public struct PkusegSegmenter: Sendable {
    public let model: PkusegModel
    public let wordList: PkusegWordList
    let userDictionary: PkusegUserDictionary

    /// `userWords`: upstream's `user_dict` given as a list of words (each `strip()`ped); empty is
    /// `user_dict="default"`.
    public init(model: PkusegModel, wordList: PkusegWordList, userWords: [String] = []) {
        self.model = model
        self.wordList = wordList
        userDictionary = PkusegUserDictionary(words: userWords)
    }

    /// `pkuseg()` over a folder holding `features.msgpack`, `weights.npz` and `default.pkl`
    /// (`PkusegModelLocation`).
    public init(directory: URL) throws {
        self.init(model: try PkusegModel(directory: directory),
                  wordList: try PkusegWordList(contentsOf: directory.appendingPathComponent(PkusegWordList.defaultFileName)))
    }

    /// `pkuseg.cut(text)`: the words, none of them empty or holding whitespace.
    public func cut(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var words: [String] = []
        var start = 0
        while start < scalars.count {
            // `txt.strip().split()`: maximal runs of non-whitespace.
            guard !PythonText.isSpace(scalars[start]) else { start += 1; continue }
            var end = start
            while end < scalars.count, !PythonText.isSpace(scalars[end]) { end += 1 }
            let piece = scalars[start..<end]
            for (range, isUserWord) in userDictionary.solve(piece) {
                let stretch = piece[range]
                if isUserWord {
                    words.append(Self.string(stretch))
                } else {
                    words += postprocess(crfWords(stretch)).map { String(decoding: $0, as: UTF8.self) }
                }
            }
            start = end
        }
        return words
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    // MARK: The CRF (`pkuseg._cut`)

    /// `_cut(text)` for a non-empty stretch without whitespace: its words as UTF-8.
    func crfWords(_ text: ArraySlice<Unicode.Scalar>) -> [[UInt8]] {
        let nodes = text.map(Self.normalizedNode)
        var nodeScores = [Double](repeating: 0, count: nodes.count * model.tagCount)
        var extractor = FeatureExtractor(model: model, nodes: nodes)
        for position in nodes.indices {
            // getLogYY: node_score[i, s] += w[f·n_tag + s], feature by feature in extraction order.
            extractor.forEachFeature(at: position) { feature in
                let base = feature * model.tagCount
                for tag in 0..<model.tagCount { nodeScores[position * model.tagCount + tag] += model.weights[base + tag] }
            }
        }
        let tags = viterbi(nodeScores: nodeScores, length: nodes.count)
        var words: [[UInt8]] = []
        var current: [UInt8] = []
        for (index, (tag, character)) in zip(tags, text).enumerated() {
            if index > 0, model.tagStartsWord[tag] {
                words.append(current)
                current = []
            }
            current.append(contentsOf: character.utf8)
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// `FeatureExtractor.normalize_text` for one code point: `keyword_rename` (`-._,|/*:` → `&`), then
    /// `_num_letter_normalize_char` (`config.numLetterNorm` is on).
    static func normalizedNode(_ scalar: Unicode.Scalar) -> [UInt8] {
        if keywords.contains(scalar) { return Array("&".utf8) }
        if numbers.contains(scalar) { return Array("**Num".utf8) }
        if letters.contains(scalar) { return Array("**Letter".utf8) }
        return Array(String(scalar).utf8)
    }

    private static let keywords = Set("-._,|/*:".unicodeScalars)
    /// `FeatureExtractor.num` ("." is renamed before it is ever looked up).
    private static let numbers = Set("0123456789.几二三四五六七八九十千万亿兆零１２３４５６７８９０％".unicodeScalars)
    /// `FeatureExtractor.letter` (upstream's list repeats ｇ where ｊ belongs; so does this one).
    private static let letters = Set("ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺａｂｃｄｅｆｇｈｉｇｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ／・－".unicodeScalars)

    /// `decodeViterbi_fast`: `getLogYY` (edge scores start at one: `np.ones`) and `run_viterbi`, which
    /// runs backwards from the last node; among equal scores it keeps the last next-tag it tried
    /// (`>=`) and, at the first node, the first tag (`<`).
    func viterbi(nodeScores: [Double], length: Int) -> [Int] {
        let tags = model.tagCount
        let transitions = model.featureCount * tags
        // edge[s_pre, s] = 1 + w[backoff + s·n_tag + s_pre]
        var edge = [Double](repeating: 1, count: tags * tags)
        for tag in 0..<tags {
            for previous in 0..<tags { edge[previous * tags + tag] += model.weights[transitions + tag * tags + previous] }
        }
        var best = [Double](repeating: 0, count: length * tags)
        var next = [Int](repeating: 0, count: length * tags)
        for tag in 0..<tags { best[(length - 1) * tags + tag] = nodeScores[(length - 1) * tags + tag] }
        if length >= 2 {
            for position in stride(from: length - 2, through: 0, by: -1) {
                for tag in 0..<tags {
                    for following in 0..<tags {
                        // (max_score[i+1, y'] + node_score[i, y]) + edge_score[y, y'], as the C sums it.
                        let score = best[(position + 1) * tags + following] + nodeScores[position * tags + tag] + edge[tag * tags + following]
                        if following == 0 || score >= best[position * tags + tag] {
                            best[position * tags + tag] = score
                            next[position * tags + tag] = following
                        }
                    }
                }
            }
        }
        var tag = 0
        for candidate in 1..<max(tags, 1) where best[tag] < best[candidate] { tag = candidate }
        var path = [tag]
        path.reserveCapacity(length)
        for position in 1..<max(length, 1) {
            tag = next[(position - 1) * tags + tag]
            path.append(tag)
        }
        return path
    }

    // MARK: Post-processing (`Postprocesser.post_process`, check_seperated=True)

    /// Upstream's `common_words` is empty for every model chatterbox can load (it is filled only from
    /// a `common_name` that `pkuseg.__init__` always passes as None), so only the word list counts.
    func postprocess(_ input: [[UInt8]]) -> [[UInt8]] {
        var words = input
        for size in stride(from: 7, through: 2, by: -1) {
            var end = words.count - size
            if end < 0 { continue }
            var index = 0
            while index < end + 1 {
                let run = words[index..<(index + size)]
                let merged = Array(run.joined())
                if wordList.contains(merged), !run.allSatisfy({ wordList.contains($0) }) {
                    words.replaceSubrange(index..<(index + size), with: [merged])
                    end = words.count - size
                }
                index += 1
            }
        }
        return words
    }
}

/// `__get_node_features_idx` over one stretch's normalised nodes: the indices of the features the
/// model knows, in upstream's order (index 0, the start feature `$$`, always first).
struct FeatureExtractor {
    let model: PkusegModel
    let nodes: [[UInt8]]
    /// The key being built (reused; a lookup wraps it without copying).
    private var key: [UInt8] = []
    static let wordMax = 6, wordMin = 2
    private static let noWord = Array("**noWord".utf8)

    /// The feature names' prefixes, as upstream spells them.
    private enum Prefix {
        static let c = Array("c.".utf8), previous = Array("c-1.".utf8), previousPair = Array("c-1c.".utf8)
        static let next = Array("c1.".utf8), nextPair = Array("cc1.".utf8)
        static let beforePrevious = Array("c-2.".utf8), beforePreviousPair = Array("c-2c-1.".utf8), afterNext = Array("c2.".utf8)
        static let wordEnding = Array("w-1.".utf8), wordStarting = Array("w1.".utf8)
        static let pairLeft = Array("ww.l.".utf8), pairRight = Array("ww.r.".utf8)
        static let dot = Array(".".utf8), star = Array("*".utf8)
    }

    init(model: PkusegModel, nodes: [[UInt8]]) {
        self.model = model
        self.nodes = nodes
        key.reserveCapacity(64)
    }

    /// The index of the feature spelled by `parts` concatenated, when the model knows it.
    private mutating func lookup(_ parts: [UInt8]...) -> Int? {
        key.removeAll(keepingCapacity: true)
        for part in parts { key.append(contentsOf: part) }
        return model.featureIndex[PythonStringKey(key)].map(Int.init)
    }

    /// `get_slice_str(nodes, start, length, len(nodes))`: the nodes joined, or "" out of range.
    private func slice(_ start: Int, _ length: Int) -> [UInt8] {
        guard start >= 0, start < nodes.count, start + length < nodes.count + 1 else { return [] }
        return Array(nodes[start..<(start + length)].joined())
    }

    mutating func forEachFeature(at index: Int, _ body: (Int) -> Void) {
        func emit(_ feature: Int?) { if let feature { body(feature) } }
        let count = nodes.count
        let character = nodes[index]
        let dot = Prefix.dot, star = Prefix.star
        body(0)
        emit(lookup(Prefix.c, character))
        if index > 0 {
            let previous = nodes[index - 1]
            emit(lookup(Prefix.previous, previous))
            emit(lookup(Prefix.previousPair, previous, dot, character))
        }
        if index + 1 < count {
            let following = nodes[index + 1]
            emit(lookup(Prefix.next, following))
            emit(lookup(Prefix.nextPair, character, dot, following))
        }
        if index > 1 {
            let beforePrevious = nodes[index - 2]
            emit(lookup(Prefix.beforePrevious, beforePrevious))
            emit(lookup(Prefix.beforePreviousPair, beforePrevious, dot, nodes[index - 1]))
        }
        if index + 2 < count {
            emit(lookup(Prefix.afterNext, nodes[index + 2]))
        }

        // Word features, lengths 6 down to 2: the words (in `unigram`) that end at this node
        // (prefix, "w-1.") and that start at it (suffix, "w1."), each a feature; then the words
        // ending just before it and starting just after it, which only feed the pairs below.
        let lengths = Array(stride(from: Self.wordMax, through: Self.wordMin, by: -1))
        var endingHere: [[UInt8]] = [], startingHere: [[UInt8]] = [], endingBefore: [[UInt8]] = [], startingAfter: [[UInt8]] = []
        for length in lengths {
            let word = slice(index - length + 1, length)
            if model.unigrams.contains(PythonStringKey(word)) {
                emit(lookup(Prefix.wordEnding, word))
                endingHere.append(word)
            } else {
                endingHere.append(Self.noWord)
            }
        }
        for length in lengths {
            let word = slice(index, length)
            if model.unigrams.contains(PythonStringKey(word)) {
                emit(lookup(Prefix.wordStarting, word))
                startingHere.append(word)
            } else {
                startingHere.append(Self.noWord)
            }
        }
        for length in lengths {
            let word = slice(index - length, length)
            endingBefore.append(model.unigrams.contains(PythonStringKey(word)) ? word : Self.noWord)
        }
        for length in lengths {
            let word = slice(index + 1, length)
            startingAfter.append(model.unigrams.contains(PythonStringKey(word)) ? word : Self.noWord)
        }
        // The node inside a word: pairs of a word before it and one starting at it ("ww.l."), and of
        // one ending at it and one after it ("ww.r.").
        let left = Prefix.pairLeft, right = Prefix.pairRight
        for before in endingBefore {
            for starting in startingHere { emit(lookup(left, before, star, starting)) }
        }
        for ending in endingHere {
            for after in startingAfter { emit(lookup(right, ending, star, after)) }
        }
    }
}

/// `Preprocesser`: the user dictionary's trie and its greedy longest-match scan, quirks included.
struct PkusegUserDictionary: Sendable {
    private struct Node: Sendable {
        var isWord = false
        var children: [Unicode.Scalar: Int] = [:]
    }
    private var nodes = [Node()]

    init(words: [String]) {
        for word in words { insert(Array(PythonText.stripped(word).unicodeScalars)) }
    }

    private mutating func insert(_ word: [Unicode.Scalar]) {
        var node = 0
        for scalar in word {
            if let child = nodes[node].children[scalar] {
                node = child
            } else {
                nodes.append(Node())
                nodes[node].children[scalar] = nodes.count - 1
                node = nodes.count - 1
            }
        }
        nodes[node].isWord = true
    }

    /// `solve(txt)`: the text's stretches (ranges of `text`'s indices) in order, each marked whether it
    /// is a dictionary word. As upstream: a match stopped by a character the trie lacks ends *there*,
    /// not after the longest word seen (so it may keep a tail that is no word); one stopped by the end
    /// of the text ends after the longest word.
    func solve(_ text: ArraySlice<Unicode.Scalar>) -> [(Range<Int>, Bool)] {
        let base = text.startIndex, length = text.count
        guard !nodes[0].children.isEmpty, length > 0 else { return length > 0 ? [(base..<text.endIndex, false)] : [] }
        var stretches: [(Range<Int>, Bool)] = []
        var last = 0, start = 0
        while start < length {
            var node = 0, end = start, found = false, lastWordEnd = -1
            while true {
                guard let child = nodes[node].children[text[base + end]] else {
                    found = lastWordEnd != -1
                    break
                }
                node = child
                if nodes[node].isWord { lastWordEnd = end }
                end += 1
                if end == length {
                    if lastWordEnd != -1 {
                        end = lastWordEnd + 1
                        found = true
                    }
                    break
                }
            }
            if found {
                if last != start { stretches.append(((base + last)..<(base + start), false)) }
                stretches.append(((base + start)..<(base + end), true))
                last = end
                start = end
            } else {
                start += 1
            }
        }
        if last < length { stretches.append(((base + last)..<(base + length), false)) }
        return stretches
    }
}
