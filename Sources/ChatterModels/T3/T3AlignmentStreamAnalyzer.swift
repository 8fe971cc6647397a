/// Upstream 0.1.7's `AlignmentStreamAnalyzer` (multilingual V2 only; 3f35dfc removed it with V3):
/// the mean attention of a few backbone heads over the text approximates where speech is in the
/// text; from it, before every draw, the CFG-combined logits are edited so that generation neither
/// stops early nor runs on past the text.
///
/// Invariant: after `step` k (0 = the prefill) the alignment holds exactly the rows upstream's
/// `self.alignment` holds after its k-th call (the prefill's speech-start rows, then one row per
/// decode step; columns = the wrapped text, those beyond the frame index zeroed), so every decision
/// is taken on the same numbers as upstream. Per draw it changes the logits in one of two ways:
/// - end-of-speech suppressed (set to −2¹⁵) while the current frame attends before the last three
///   text tokens (texts of more than five wrapped tokens);
/// - end-of-speech forced (every other logit −2¹⁵, EOS +2¹⁵) on a long tail (the last three text
///   tokens attended for ≥ 5 frames' worth after completion), on alignment repetition (earlier
///   text attended again after completion, summed maxima > 5), or when the last two fed tokens are equal.
/// Upstream's `false_start` and `discontinuity` bookkeeping that never reaches the logits is kept
/// only as far as it does (the text position ignores discontinuous jumps).
///
/// One divergence: upstream raises (`max()` over an empty dimension) once alignment completes on a
/// text of five or fewer wrapped tokens; here alignment repetition is then false.
public struct T3AlignmentStreamAnalyzer: Sendable {
    /// `LLAMA_ALIGNED_HEADS` (layer, head) of the 30-layer multilingual T3.
    public static let multilingualHeads = [T3AttentionHead(layer: 12, head: 15), T3AttentionHead(layer: 13, head: 11),
                                           T3AttentionHead(layer: 9, head: 2)]
    /// The value logits are pushed to (±2¹⁵, safe in every dtype upstream runs).
    static let forcingMagnitude: Float = 32768

    public let heads: [T3AttentionHead]
    /// Wrapped text positions in the prefill (`text_tokens_slice`).
    public let textRange: Range<Int>
    public let endOfSpeech: Int
    /// Rows of the alignment matrix, `textRange.count` wide.
    public private(set) var alignment: [[Float]] = []
    /// Frames analysed so far (upstream `curr_frame_pos`).
    public private(set) var frame = 0
    /// Upstream `text_position`: the last continuous argmax.
    public private(set) var textPosition = 0
    public private(set) var complete = false
    /// Alignment rows present when completion was first seen (upstream `completed_at`).
    public private(set) var completedAt: Int?
    /// The last (at most 8) fed tokens, start-of-speech first (upstream `generated_tokens`).
    public private(set) var recentTokens: [Int] = []
    /// Draws whose logits this analyser changed: end-of-speech suppressed (and not forced), and
    /// end-of-speech forced.
    public private(set) var suppressedEndOfSpeech = 0
    public private(set) var forcedEndOfSpeech = 0

    public init(heads: [T3AttentionHead], textRange: Range<Int>, endOfSpeech: Int) {
        self.heads = heads
        self.textRange = textRange
        self.endOfSpeech = endOfSpeech
    }

    /// Analyses the last forward pass and edits `logits` (CFG-combined, before the repetition
    /// penalty). `attention`: each head's rows as `T3Decoder` records them (batch row 0; the
    /// prefill's rows from the first speech-start query on, else the one new query), row-major over
    /// `keys` cached keys (the row length); `lastToken`: the token the pass was fed
    /// (start-of-speech for the prefill).
    public mutating func step(_ logits: inout [Float], attention: [T3AttentionHead: [Float]], keys: Int, lastToken: Int) {
        let width = textRange.count
        let rows = meanRows(attention, keys: keys)
        var chunk = rows.map { row in
            (0..<width).map { c in c <= frame ? row[textRange.lowerBound + c] : 0 }
        }
        if chunk.isEmpty { chunk = [[Float](repeating: 0, count: width)] }
        alignment += chunk

        let current = Self.firstArgmax(chunk[chunk.count - 1])
        if -4 < current - textPosition, current - textPosition < 7 { textPosition = current }
        complete = complete || textPosition >= width - 3
        if complete, completedAt == nil { completedAt = alignment.count }

        var longTail = false, alignmentRepetition = false
        if let completedAt {
            let tail = alignment[completedAt...]
            let lastColumns = max(0, width - 3)..<width
            longTail = lastColumns.contains { c in tail.reduce(Float(0)) { $0 + $1[c] } >= 5 }
            if width > 5 {
                alignmentRepetition = tail.reduce(Float(0)) { $0 + $1[0..<(width - 5)].max()! } > 5
            }
        }
        recentTokens.append(lastToken)
        if recentTokens.count > 8 { recentTokens.removeFirst(recentTokens.count - 8) }
        let tokenRepetition = recentTokens.count >= 3 && recentTokens[recentTokens.count - 1] == recentTokens[recentTokens.count - 2]

        if longTail || alignmentRepetition || tokenRepetition {
            for i in logits.indices { logits[i] = -Self.forcingMagnitude }
            if endOfSpeech < logits.count { logits[endOfSpeech] = Self.forcingMagnitude }
            forcedEndOfSpeech += 1
        } else if current < width - 3, width > 5, endOfSpeech < logits.count {
            logits[endOfSpeech] = -Self.forcingMagnitude
            suppressedEndOfSpeech += 1
        }
        frame += 1
    }

    /// The heads' rows averaged (`torch.stack(...).mean(0)`: summed in order, then divided).
    private func meanRows(_ attention: [T3AttentionHead: [Float]], keys rowLength: Int) -> [[Float]] {
        let perHead = heads.map { attention[$0] ?? [] }
        guard rowLength >= textRange.upperBound, let first = perHead.first, first.count % rowLength == 0,
              perHead.allSatisfy({ $0.count == first.count })
        else { return [] }
        let rowCount = first.count / rowLength
        return (0..<rowCount).map { r in
            (0..<rowLength).map { k in
                var sum: Float = 0
                for head in perHead { sum += head[r * rowLength + k] }
                return sum / Float(perHead.count)
            }
        }
    }

    /// `torch.argmax`: the first index of the maximum.
    static func firstArgmax(_ row: [Float]) -> Int {
        var best = 0
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }
}
