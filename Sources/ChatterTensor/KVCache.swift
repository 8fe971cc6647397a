import CChatterKernels

/// Keys and values of past tokens for every layer of a decoder, preallocated at creation so that
/// decode steps never allocate or copy the history: each layer holds [B, H, capacity, D] buffers
/// and a fill length, and attention reads the filled prefix in place.
///
/// Layers advance independently (a step appends to layer 0, attends, then moves on to layer 1), so
/// each keeps its own length. Not thread-safe: one decode loop owns a cache.
///
/// Keys and values are stored in `precision`. A decode step reads every cached key and value once
/// and is memory-bound, so 16-bit storage halves that traffic (on q8_0 Turbo T3 weights the f32
/// cache was ~21 % of a step's bytes at ~420 positions). With 16 bits, appends round once (to nearest
/// even); a decode step's attention (one query token) reads the halves in place and accumulates in
/// f32 (`chatter_kv_scores_isa`, `chatter_kv_weighted_sum_isa`); longer queries (the prefill) and
/// masked ones widen the layer's stored prefix into f32 and run the f32 attention, which is simplest
/// and costs a copy per prefill layer, not per token.
public final class KVCache {
    /// How keys and values are stored; the f32 path is the reference and reads its buffers in place.
    public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
        case f32, f16, bf16

        /// The stored element type.
        public var dtype: DType {
            switch self {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            }
        }

        var kernelFormat: chatter_kv_format? {
            switch self {
            case .f32: nil
            case .f16: CHATTER_KV_F16
            case .bf16: CHATTER_KV_BF16
            }
        }

        public var description: String { rawValue }
    }

    public let layers: Int
    public let batch: Int
    public let heads: Int
    public let capacity: Int
    public let headDim: Int
    public let precision: Precision
    /// The kernels' instruction set for the 16-bit paths (tests lower it to compare variants).
    var kernelISA = KernelISA.current

    private let keyStore: [Tensor]
    private let valueStore: [Tensor]
    private var lengths: [Int]
    /// Score rows for decode steps (B·H·capacity floats), so that Tq = 1 attention allocates nothing.
    private let decodeScores: UnsafeMutablePointer<Float>

    public init(layers: Int, batch: Int, heads: Int, capacity: Int, headDim: Int, precision: Precision = .f32) {
        precondition(layers > 0 && batch > 0 && heads > 0 && capacity > 0 && headDim > 0,
                     "KV cache dimensions must be positive (layers \(layers), batch \(batch), heads \(heads), capacity \(capacity), headDim \(headDim))")
        self.layers = layers
        self.batch = batch
        self.heads = heads
        self.capacity = capacity
        self.headDim = headDim
        self.precision = precision
        keyStore = (0..<layers).map { _ in Tensor(zeros: [batch, heads, capacity, headDim], dtype: precision.dtype) }
        valueStore = (0..<layers).map { _ in Tensor(zeros: [batch, heads, capacity, headDim], dtype: precision.dtype) }
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

    /// The stored keys of `layer`, [B, H, length, D] in f32: with f32 storage a view into the cache
    /// (valid until the next append or reset overwrites it), with 16 bits a widened copy.
    public func keys(layer: Int) -> Tensor { widened(keyStore[layer], length: lengths[layer]) }
    public func values(layer: Int) -> Tensor { widened(valueStore[layer], length: lengths[layer]) }

    private func widened(_ store: Tensor, length: Int) -> Tensor {
        let view = store.slice(2, 0..<length)
        guard let format = precision.kernelFormat else { return view }
        let result = Tensor(zeros: [batch, heads, length, headDim])
        let block = length * headDim
        result.withUnsafeMutableFloats { d in
            let source = Self.halves(store)
            for pair in 0..<(batch * heads) {
                chatter_kv_widen_isa(kernelISA.c, format, source + pair * capacity * headDim, d.baseAddress! + pair * block, block)
            }
        }
        return result
    }

    /// The 16-bit elements of a store (a whole heap tensor of this cache, so its offset is 0).
    private static func halves(_ store: Tensor) -> UnsafeMutablePointer<UInt16> {
        store.storage.baseAddress.assumingMemoryBound(to: UInt16.self)
    }

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
            if let format = precision.kernelFormat {
                src.withUnsafeFloats { s in
                    let d = Self.halves(store)
                    for b in 0..<batch {
                        let sb = sourceRows == 1 ? 0 : b
                        for h in 0..<heads {
                            chatter_kv_narrow_isa(kernelISA.c, format, s.baseAddress! + (sb * heads + h) * t * headDim,
                                                  d + ((b * heads + h) * capacity + start) * headDim, t * headDim)
                        }
                    }
                }
                continue
            }
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
        if precision != .f32 && query.shape[2] == 1 && mask == nil {
            return decodeAttention(layer: layer, query: query, scale: scale, probabilities: nil, into: output)
        }
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
        if precision != .f32 && query.shape[2] == 1 && mask == nil {
            return (decodeAttention(layer: layer, query: query, scale: scale, probabilities: probabilities, into: nil), probabilities)
        }
        let output = AttentionKernel.run(query: query, key: keys(layer: layer), value: values(layer: layer), mask: mask,
                                         causalOffset: causal ? length - query.shape[2] : nil, scale: scale,
                                         probabilities: probabilities, scratch: nil)
        return (output, probabilities)
    }

    /// One query token over the 16-bit cache of `layer`, read in place: per (row, head) the scores
    /// (`chatter_kv_scores_isa`), the softmax as `AttentionKernel` finishes a row, then the weighted
    /// sum of values (`chatter_kv_weighted_sum_isa`). With one query the causal limit is the whole
    /// cache, so `causal` does not change the result.
    private func decodeAttention(layer: Int, query: Tensor, scale: Float?, probabilities: Tensor?, into destination: Tensor?) -> Tensor {
        let format = precision.kernelFormat!
        let length = lengths[layer], dim = headDim
        precondition(query.shape == [batch, heads, 1, dim], "KV cache attention: query \(query.shape), expected [\(batch), \(heads), 1, \(dim)]")
        if let destination {
            precondition(destination.shape == [batch, heads, 1, dim] && destination.dtype == .f32 && destination.isContiguous,
                         "attention output must be a contiguous f32 [\(batch), \(heads), 1, \(dim)] tensor, got \(destination.shape)")
        }
        let output = destination ?? Tensor(zeros: [batch, heads, 1, dim])
        let scale = scale ?? 1 / Float(dim).squareRoot()
        let q = AttentionKernel.prepared(query)
        let scores: UnsafeMutablePointer<Float> = probabilities.map { $0.withUnsafeMutableFloats { $0.baseAddress! } } ?? decodeScores
        let keyBase = Self.halves(keyStore[layer]), valueBase = Self.halves(valueStore[layer])
        let isa = kernelISA.c, capacity = capacity, heads = heads
        q.withUnsafeFloatsStrided { qp in
        output.withUnsafeMutableFloats { ob in
            let Q = AttentionKernel.Operand(base: qp, strides: q.strides)
            let out = ob.baseAddress!
            let body: (Range<Int>) -> Void = { range in
                for pair in range {
                    let b = pair / heads, h = pair % heads
                    let s = scores + pair * length, o = out + pair * dim
                    let stored = pair * capacity * dim
                    chatter_kv_scores_isa(isa, format, Q.head(b, h), keyBase + stored, dim, length, dim, scale, s)
                    let peak = length > 0 ? SoftmaxKernel.rowMax(s, length) : -.infinity
                    if peak == -.infinity {
                        s.update(repeating: 0, count: length)
                        o.update(repeating: 0, count: dim)
                        continue
                    }
                    SoftmaxKernel.scale(s, length, 1 / SoftmaxKernel.expShifted(s, s, length, peak))
                    chatter_kv_weighted_sum_isa(isa, format, s, valueBase + stored, dim, length, dim, o)
                }
            }
            // The same split as the f32 direct loops (`AttentionKernel.run`): serial below four grains of work.
            let pairs = batch * heads, work = pairs * length * 2 * dim
            if work < 4 * PointwiseLoop.parallelGrain { body(0..<pairs) } else {
                ThreadPool.shared.parallelFor(pairs, minimumChunk: max(1, (4 * PointwiseLoop.parallelGrain) / max(1, length * 2 * dim)), body)
            }
        }
        }
        return output
    }
}
