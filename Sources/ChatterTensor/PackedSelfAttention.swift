import COpenBLAS

/// Unmasked multi-head self-attention read straight from a fused q‖k‖v projection:
/// `qkv` [B, T, 3·H·D] (q heads, then k heads, then v heads, each head D wide) → softmax(q·kᵀ·scale)·v
/// merged back to [B, T, H·D], i.e. `scaledDotProductAttention` on the head views followed by the
/// head merge, without materialising either.
///
/// Why a kernel of its own: the head views of a fused projection are not row-wise per head, so the
/// general SDPA copies q, k and v, then the merge copies the output again; and it runs heads one
/// after another, each GEMM and softmax split across the pool. Here every
/// (batch, head, block of query rows) is one work item for our pool: a single-threaded sgemm for
/// the block's scores against all keys (ld = 3·H·D, no copy), the softmax rows, and a second sgemm
/// that writes the block's output rows into their head's columns of the merged result. A block of
/// `queryBlock` rows keeps its scores (`queryBlock`·T floats) in L2 instead of a T×T matrix per head.
public func packedSelfAttention(_ qkv: Tensor, heads: Int, scale: Float? = nil) -> Tensor {
    precondition(qkv.rank == 3 && heads > 0 && qkv.shape[2] % (3 * heads) == 0,
                 "packedSelfAttention expects [B, T, 3·heads·D], got \(qkv.shape) for \(heads) heads")
    let (batch, length, width) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
    let inner = width / 3, dim = inner / heads
    let scale = scale ?? 1 / Float(dim).squareRoot()
    let input = qkv.contiguousF32()
    let output = Tensor(zeros: [batch, length, inner])
    guard batch > 0, length > 0, dim > 0 else { return output }
    let queryBlock = PackedSelfAttentionKernel.queryBlock
    let blocks = (length + queryBlock - 1) / queryBlock
    GEMMThreading.useSingleThreadedBLAS()  // the workers below call sgemm themselves
    input.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let base = source.baseAddress!, out = destination.baseAddress!
            ThreadPool.shared.parallelFor(batch * heads * blocks, minimumChunk: 1) { items in
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * length)
                defer { scores.deallocate() }
                for item in items {
                    let b = item / (heads * blocks), h = (item / blocks) % heads, first = (item % blocks) * queryBlock
                    let rows = min(queryBlock, length - first)
                    let sequence = base + b * length * width
                    let query = sequence + first * width + h * dim
                    let key = sequence + inner + h * dim, value = sequence + 2 * inner + h * dim
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(length), Int32(dim),
                                scale, query, Int32(width), key, Int32(width), 0, scores, Int32(length))
                    SoftmaxKernel.softmaxRowsInPlace(scores, count: rows, length: length, stride: length)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(length),
                                1, scores, Int32(length), value, Int32(width),
                                0, out + (b * length + first) * inner + h * dim, Int32(inner))
                }
            }
        }
    }
    return output
}

enum PackedSelfAttentionKernel {
    /// Query rows per work item: 128 rows of scores against 600 keys are 300 KB, inside L2.
    static let queryBlock = 128
}
