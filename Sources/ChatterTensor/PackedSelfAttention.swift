import CChatterKernels
import COpenBLAS

/// Unmasked multi-head self-attention read straight from a fused q‖k‖v projection:
/// `qkv` [B, T, 3·H·D] (q heads, then k heads, then v heads, each head D wide) → softmax(q·kᵀ·scale)·v
/// merged back to [B, T, H·D], i.e. `scaledDotProductAttention` on the head views followed by the
/// head merge, without materialising either.
///
/// Why a kernel of its own: the head views of a fused projection are not row-wise per head, so the
/// general SDPA copies q, k and v, then the merge copies the output again; and it runs heads one
/// after another, each GEMM and softmax split across the pool. Here every
/// (batch, head, block of query rows) is one work item for our pool, reading the head views in place
/// (ld = 3·H·D, no copy) and writing the block's output rows into their head's columns of the
/// merged result.
///
/// `algorithm: .unfused` (the default, and the reference) is a single-threaded sgemm for the block's
/// scores against all keys, the softmax rows, and a second sgemm for the output: `queryBlock`·T
/// floats of scores per item. `.fused` runs the flash loop of `FlashAttentionKernel`: keys in
/// blocks, an online softmax, nothing longer than a key block per query row. The default is the
/// unfused op because up to T = 2000 its block's scores still fit L2, and the fused loop's extra
/// sgemm calls leave it equal within noise on two threads and ~1 % slower on one (BENCHMARKS.md,
/// "Fused attention").
///
/// `products: .bf16` (S3Gen's bf16 compute, when its q‖k‖v projection is bf16) runs both products on
/// the avx512_bf16 GEMM: queries, keys (scaled), probabilities and values rounded to bf16, f32 sums,
/// the softmax in f32. Without avx512_bf16 (or with `isa` lowered) it is the f32 path.
public func packedSelfAttention(_ qkv: Tensor, heads: Int, scale: Float? = nil, products: DType = .f32,
                                algorithm: AttentionAlgorithm = .unfused, isa: KernelISA = .current) -> Tensor {
    precondition(qkv.rank == 3 && heads > 0 && qkv.shape[2] % (3 * heads) == 0,
                 "packedSelfAttention expects [B, T, 3·heads·D], got \(qkv.shape) for \(heads) heads")
    let (batch, length, width) = (qkv.shape[0], qkv.shape[1], qkv.shape[2])
    let inner = width / 3, dim = inner / heads
    let scale = scale ?? 1 / Float(dim).squareRoot()
    let input = qkv.contiguousF32()
    let output = Tensor(zeros: [batch, length, inner])
    guard batch > 0, length > 0, dim > 0 else { return output }
    let bf16 = products == .bf16 && isa >= .avx512bf16 && KernelISA.current >= .avx512bf16
    switch (algorithm, bf16) {
    case (.fused, false): flashPackedSelfAttention(input, into: output, heads: heads, scale: scale, isa: isa)
    case (.fused, true): flashPackedSelfAttentionBF16(input, into: output, heads: heads, scale: scale)
    case (.unfused, false): packedSelfAttentionUnfused(input, into: output, heads: heads, scale: scale, isa: isa)
    case (.unfused, true): packedSelfAttentionUnfusedBF16(input, into: output, heads: heads, scale: scale)
    }
    return output
}

/// The reference f32 path (`algorithm: .unfused`): per (batch, head, query block) the scores against
/// every key, the softmax rows, then · v.
private func packedSelfAttentionUnfused(_ input: Tensor, into output: Tensor, heads: Int, scale: Float, isa: KernelISA) {
    let (batch, length, width) = (input.shape[0], input.shape[1], input.shape[2])
    let inner = width / 3, dim = inner / heads
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
                    SoftmaxKernel.softmaxRowsInPlace(scores, count: rows, length: length, stride: length, isa: isa)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(length),
                                1, scores, Int32(length), value, Int32(width),
                                0, out + (b * length + first) * inner + h * dim, Int32(inner))
                }
            }
        }
    }
}

/// The reference path with bf16 products (`algorithm: .unfused`), the same work items: the bf16
/// keys (scaled) and transposed values of `PackedHeadsBF16`, then per block of query rows one
/// single-threaded bf16 GEMM for the scores (`chatter_gemm_bf16_pack_a` rounds the queries), the f32
/// softmax, and one for the output (the probabilities rounded as they are packed).
private func packedSelfAttentionUnfusedBF16(_ input: Tensor, into output: Tensor, heads: Int, scale: Float) {
    let (batch, length, width) = (input.shape[0], input.shape[1], input.shape[2])
    let inner = width / 3, dim = inner / heads
    let queryBlock = PackedSelfAttentionKernel.queryBlock
    let blocks = (length + queryBlock - 1) / queryBlock
    let headElements = length * dim
    let operands = PackedHeadsBF16(input, heads: heads, scale: scale)
    defer { operands.deallocate() }
    let ka = UInt(bitPattern: operands.keys)
    input.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let sa = UInt(bitPattern: source.baseAddress!), oa = UInt(bitPattern: destination.baseAddress!)
            ThreadPool.shared.parallelFor(batch * heads * blocks, minimumChunk: 1) { items in
                let base = UnsafePointer<Float>(bitPattern: sa)!, out = UnsafeMutablePointer<Float>(bitPattern: oa)!
                let k = UnsafePointer<UInt16>(bitPattern: ka)!
                let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * length)
                defer { scores.deallocate() }
                let packedBytes = max(chatter_gemm_bf16_packed_a_bytes(queryBlock, dim), chatter_gemm_bf16_packed_a_bytes(queryBlock, length))
                let packed = UnsafeMutableRawPointer.allocate(byteCount: packedBytes, alignment: 64)
                defer { packed.deallocate() }
                for item in items {
                    let bh = item / blocks, b = bh / heads, h = bh % heads, first = (item % blocks) * queryBlock
                    let rows = min(queryBlock, length - first)
                    let query = base + b * length * width + first * width + h * dim
                    let strips = (rows + Int(CHATTER_GEMM_BF16_MR) - 1) / Int(CHATTER_GEMM_BF16_MR)
                    var done = chatter_gemm_bf16_pack_a(query, width, rows, dim, packed, 0, strips)
                    done &= chatter_gemm_bf16_run(packed, rows, dim, k + bh * headElements, dim, nil, scores, length,
                                                  0, rows, 0, length, 0)
                    done &= chatter_softmax_rows_for_bf16(scores, rows, length, length)
                    done &= chatter_gemm_bf16_pack_a(scores, length, rows, length, packed, 0, strips)
                    done &= chatter_gemm_bf16_run(packed, rows, length, k + (batch * heads + bh) * headElements, length, nil,
                                                  out + (b * length + first) * inner + h * dim, inner, 0, rows, 0, dim, 0)
                    precondition(done == 1, "bf16 attention needs avx512_bf16")
                }
            }
        }
    }
}

enum PackedSelfAttentionKernel {
    /// Query rows per work item of the unfused op: 128 rows of scores against 600 keys are 300 KB, inside L2.
    static let queryBlock = 128
}
