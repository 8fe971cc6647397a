/// Keys and values of past tokens for every layer of a decoder, preallocated at creation so that
/// decode steps never allocate or copy the history: each layer holds [B, H, capacity, D] buffers
/// and a fill length, and attention reads the filled prefix in place.
///
/// Layers advance independently (a step appends to layer 0, attends, then moves on to layer 1), so
/// each keeps its own length. Not thread-safe: one decode loop owns a cache.
public final class KVCache {
    public let layers: Int
    public let batch: Int
    public let heads: Int
    public let capacity: Int
    public let headDim: Int

    private let keyStore: [Tensor]
    private let valueStore: [Tensor]
    private var lengths: [Int]
    /// Score rows for decode steps (B·H·capacity floats), so that Tq = 1 attention allocates nothing.
    private let decodeScores: UnsafeMutablePointer<Float>

    public init(layers: Int, batch: Int, heads: Int, capacity: Int, headDim: Int) {
        precondition(layers > 0 && batch > 0 && heads > 0 && capacity > 0 && headDim > 0,
                     "KV cache dimensions must be positive (layers \(layers), batch \(batch), heads \(heads), capacity \(capacity), headDim \(headDim))")
        self.layers = layers
        self.batch = batch
        self.heads = heads
        self.capacity = capacity
        self.headDim = headDim
        keyStore = (0..<layers).map { _ in Tensor(zeros: [batch, heads, capacity, headDim]) }
        valueStore = (0..<layers).map { _ in Tensor(zeros: [batch, heads, capacity, headDim]) }
        lengths = [Int](repeating: 0, count: layers)
        decodeScores = .allocate(capacity: batch * heads * capacity)
    }

    deinit { decodeScores.deallocate() }

    /// Tokens stored for `layer`.
    public func length(layer: Int) -> Int { lengths[layer] }

    /// Forgets every stored token (the buffers are kept).
    public func reset() { lengths = [Int](repeating: 0, count: layers) }

    /// Keeps only the first `count` tokens of every layer (e.g. to reuse a shared conditioning prefix).
    public func truncate(to count: Int) {
        precondition(count >= 0, "cannot truncate to \(count) tokens")
        lengths = lengths.map { min($0, count) }
    }

    /// The stored keys of `layer`, [B, H, length, D], a view into the cache (valid until the next
    /// append or reset overwrites it).
    public func keys(layer: Int) -> Tensor { keyStore[layer].slice(2, 0..<lengths[layer]) }
    public func values(layer: Int) -> Tensor { valueStore[layer].slice(2, 0..<lengths[layer]) }

    /// Appends new keys and values [B, H, T, D] to `layer`. No reallocation: exceeding the capacity
    /// is a programming error.
    public func append(layer: Int, keys: Tensor, values: Tensor) {
        store(layer: layer, keys: keys, values: values, sourceRows: batch)
    }

    /// Appends the same keys and values [1, H, T, D] to every batch row of `layer`: a prefix the rows
    /// share (T3's conditioning is identical in both CFG rows), stored once by its owner and copied
    /// here as one block per (row, head) instead of being recomputed per row.
    public func appendBroadcast(layer: Int, keys: Tensor, values: Tensor) {
        store(layer: layer, keys: keys, values: values, sourceRows: 1)
    }

    /// Copies [sourceRows, H, T, D] keys and values after the stored tokens of `layer`; with one source
    /// row, that row goes to every batch row.
    private func store(layer: Int, keys: Tensor, values: Tensor, sourceRows: Int) {
        precondition(layer >= 0 && layer < layers, "layer \(layer) outside 0..<\(layers)")
        precondition(keys.shape == values.shape, "KV cache: keys \(keys.shape) and values \(values.shape) differ")
        precondition(keys.rank == 4 && keys.shape[0] == sourceRows && keys.shape[1] == heads && keys.shape[3] == headDim,
                     "KV cache expects [\(sourceRows), \(heads), T, \(headDim)], got \(keys.shape)")
        let t = keys.shape[2], start = lengths[layer]
        precondition(start + t <= capacity, "KV cache layer \(layer) full: \(start) + \(t) tokens exceed the capacity \(capacity)")
        for (source, store) in [(keys, keyStore[layer]), (values, valueStore[layer])] {
            let src = source.contiguousF32()
            src.withUnsafeFloats { s in
                store.withUnsafeMutableFloats { d in
                    for b in 0..<batch {
                        let sb = sourceRows == 1 ? 0 : b
                        for h in 0..<heads {
                            (d.baseAddress! + ((b * heads + h) * capacity + start) * headDim)
                                .update(from: s.baseAddress! + (sb * heads + h) * t * headDim, count: t * headDim)
                        }
                    }
                }
            }
        }
        lengths[layer] = start + t
    }

    /// Attention of `query` [B, H, Tq, D] over everything stored in `layer`, the last Tq stored tokens
    /// being the query tokens themselves (append first, then attend). With `causal`, query i sees
    /// stored tokens up to its own position (prefill and decode alike); `mask` is added on top,
    /// broadcastable to [B, H, Tq, length].
    /// `into`: a preallocated contiguous [B, H, Tq, D] output, so that a decode step (Tq = 1, no mask)
    /// allocates nothing.
    public func attention(layer: Int, query: Tensor, mask: AttentionMask? = nil, causal: Bool = true,
                          scale: Float? = nil, into output: Tensor? = nil) -> Tensor {
        let length = lengths[layer]
        precondition(query.rank == 4 && query.shape[2] <= length,
                     "KV cache attention: query \(query.shape) has more tokens than the \(length) stored")
        let offset = causal ? length - query.shape[2] : nil
        let scratch = query.shape[2] == 1 ? decodeScores : nil
        return AttentionKernel.run(query: query, key: keys(layer: layer), value: values(layer: layer), mask: mask,
                                   causalOffset: offset, scale: scale, probabilities: nil, scratch: scratch, into: output)
    }

    /// As `attention(layer:query:…)`, also returning the probabilities [B, H, Tq, length].
    public func attentionWithProbabilities(layer: Int, query: Tensor, mask: AttentionMask? = nil, causal: Bool = true,
                                           scale: Float? = nil) -> (output: Tensor, probabilities: Tensor) {
        let length = lengths[layer]
        precondition(query.rank == 4 && query.shape[2] <= length,
                     "KV cache attention: query \(query.shape) has more tokens than the \(length) stored")
        let probabilities = Tensor(zeros: [query.shape[0], query.shape[1], query.shape[2], length])
        let output = AttentionKernel.run(query: query, key: keys(layer: layer), value: values(layer: layer), mask: mask,
                                         causalOffset: causal ? length - query.shape[2] : nil, scale: scale,
                                         probabilities: probabilities, scratch: nil)
        return (output, probabilities)
    }
}
