import CChatterKernels
import COpenBLAS

/// How the unmasked self-attention ops (`packedSelfAttention`, `relativePositionSelfAttention`)
/// evaluate softmax(scores)·v.
public enum AttentionAlgorithm: String, Sendable, CaseIterable {
    /// Flash-style (`FlashAttentionKernel`): per block of query rows, the keys in blocks with an online
    /// softmax; no score row longer than a key block exists, whatever the sequence length.
    case fused
    /// The reference: every score of a block of query rows (packed) or of a head (relative position)
    /// in memory, a softmax over whole rows, then the product with v.
    case unfused
}

/// Flash attention on the CPU (Dao et al. 2022, the online softmax of Milakov & Gimelshein 2018):
/// one work item of the pool is one (batch, head, block of query rows); for each block of keys it
///
/// 1. forms the block's scores S = scale · Q·K_blockᵀ (single-threaded sgemm over the strided head
///    views, or the avx512_bf16 GEMM),
/// 2. runs the online softmax step (`chatter_attention_online_softmax_isa`, per ISA, the softmax's
///    own exp): running row maximum m and sum l, P = exp(S − m_new) in place, and the output rows
///    accumulated so far rescaled by exp(m_old − m_new),
/// 3. adds P·V_block to the output rows (sgemm with β = 1, straight into the head's columns of the
///    merged result),
///
/// and finally divides each output row by l. Invariants: the output rows of an item are written by
/// that item only; m, l and S are per item and never outlive it; nothing longer than a key block is
/// held per query row, so an item's memory is queryBlock·(keyBlock + 16) + 2·queryBlock floats (plus, for
/// relative positions, the queries with each bias, queryBlock·D, and the band of positional scores,
/// queryBlock·(queryBlock + keyBlock − 1)), independent of the sequence length. Results differ from
/// the unfused op only by rounding: each probability is exp(s − m_block)·exp(m_block − m) instead
/// of exp(s − m), and the normalisation divides the 64-wide output row instead of the score row.
enum FlashAttentionKernel {
    /// Query rows × keys per step. 128 query rows keep the work items as large as the unfused op's
    /// (and as many: 8 heads × 3 blocks at T = 300 for 2 threads). 512 keys make a score block of
    /// 264 KiB (with its padded rows), inside Zen 4's 1 MiB L2 beside the q, k and v rows it is formed
    /// from, and give each sgemm 512 columns to amortise its packing over. Measured on Zen 4
    /// (`chatter-bench attention`, one thread, paired repetitions; BENCHMARKS.md, "Fused attention"):
    /// 256-key blocks cost 2–5 % more than 512 at T = 300–1200 (twice the sgemm calls, each repacking
    /// the query block); 64 query rows were 0–7 % slower on the CFM, equal on the encoder.
    struct Blocks: Sendable, Equatable {
        var query: Int
        var keys: Int
        static let standard = Blocks(query: 128, keys: 512)
    }

    /// Per-thread scratch of one work item: the score block and the running statistics.
    final class Scratch {
        let scores: UnsafeMutablePointer<Float>
        /// Floats from one row of `scores` to the next: the key block plus one cache line, so that a
        /// power-of-two key block does not put every row in the same L1 set (rows 4 KiB apart share a
        /// set of Zen 4's 32 KiB 8-way L1; sgemm reads the block down its columns when packing it).
        let scoresStride: Int
        let rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>
        let blocks: Blocks

        init(_ blocks: Blocks) {
            self.blocks = blocks
            scoresStride = blocks.keys + 16
            scores = .allocate(capacity: blocks.query * scoresStride)
            rowMax = .allocate(capacity: blocks.query)
            rowSum = .allocate(capacity: blocks.query)
        }

        deinit {
            scores.deallocate()
            rowMax.deallocate()
            rowSum.deallocate()
        }

        /// Resets the statistics of `rows` query rows before their first key block.
        func begin(rows: Int) {
            rowMax.update(repeating: -.infinity, count: rows)
            rowSum.update(repeating: 0, count: rows)
        }

        /// Step 2 on the score block (`keys` of its `blocks.keys` columns filled), rescaling `out`.
        func update(rows: Int, keys: Int, band: UnsafePointer<Float>? = nil, bandStride: Int = 0, scale: Float = 1,
                    out: UnsafeMutablePointer<Float>, outStride: Int, dim: Int, isa: KernelISA) {
            _ = chatter_attention_online_softmax_isa(isa.c, scores, scoresStride, rows, keys, band, bandStride, scale,
                                                     rowMax, rowSum, out, outStride, dim)
        }

        /// Divides each output row by its softmax sum (the unfused op multiplies by 1 / sum too).
        func finish(rows: Int, out: UnsafeMutablePointer<Float>, outStride: Int, dim: Int) {
            for r in 0..<rows { SoftmaxKernel.scale(out + r * outStride, dim, 1 / rowSum[r]) }
        }
    }
}

// MARK: - Packed q‖k‖v (the CFM decoder's transformer blocks)

/// `packedSelfAttention`'s fused f32 path: per (batch, head, query block) the flash loop over key
/// blocks, both products single-threaded sgemm on the strided head views of `input`, the output
/// accumulated in place in the head's columns of `output` (which it overwrites).
func flashPackedSelfAttention(_ input: Tensor, into output: Tensor, heads: Int, scale: Float, isa: KernelISA,
                              blocks: FlashAttentionKernel.Blocks = .standard) {
    let (batch, length, width) = (input.shape[0], input.shape[1], input.shape[2])
    let inner = width / 3, dim = inner / heads
    let queryBlocks = (length + blocks.query - 1) / blocks.query
    GEMMThreading.useSingleThreadedBLAS()  // the workers below call sgemm themselves
    input.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let (sa, oa) = (UInt(bitPattern: source.baseAddress!), UInt(bitPattern: destination.baseAddress!))
            ThreadPool.shared.parallelFor(batch * heads * queryBlocks, minimumChunk: 1) { items in
                let base = UnsafePointer<Float>(bitPattern: sa)!, out = UnsafeMutablePointer<Float>(bitPattern: oa)!
                let scratch = FlashAttentionKernel.Scratch(blocks)
                for item in items {
                    let b = item / (heads * queryBlocks), h = (item / queryBlocks) % heads
                    let first = (item % queryBlocks) * blocks.query, rows = min(blocks.query, length - first)
                    let sequence = base + b * length * width
                    let query = sequence + first * width + h * dim
                    let keys = sequence + inner + h * dim, values = sequence + 2 * inner + h * dim
                    let target = out + (b * length + first) * inner + h * dim
                    scratch.begin(rows: rows)
                    for keyStart in stride(from: 0, to: length, by: blocks.keys) {
                        let count = min(blocks.keys, length - keyStart)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(dim),
                                    scale, query, Int32(width), keys + keyStart * width, Int32(width),
                                    0, scratch.scores, Int32(scratch.scoresStride))
                        scratch.update(rows: rows, keys: count, out: target, outStride: inner, dim: dim, isa: isa)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(count),
                                    1, scratch.scores, Int32(scratch.scoresStride), values + keyStart * width, Int32(width),
                                    1, target, Int32(inner))
                    }
                    scratch.finish(rows: rows, out: target, outStride: inner, dim: dim)
                }
            }
        }
    }
}

/// `packedSelfAttention`'s fused path with bf16 products on avx512_bf16: keys (scaled) and values
/// rounded to bf16 once per (batch, head) as the unfused bf16 op does (`PackedHeadsBF16`), then per
/// query block the queries packed once, and per key block one bf16 GEMM for the scores, the f32 online
/// softmax step, and one bf16 GEMM accumulating P·V_block (P rounded as it is packed) into the output.
func flashPackedSelfAttentionBF16(_ input: Tensor, into output: Tensor, heads: Int, scale: Float,
                                  blocks: FlashAttentionKernel.Blocks = .standard) {
    let (batch, length, width) = (input.shape[0], input.shape[1], input.shape[2])
    let inner = width / 3, dim = inner / heads
    let queryBlocks = (length + blocks.query - 1) / blocks.query
    let operands = PackedHeadsBF16(input, heads: heads, scale: scale)
    defer { operands.deallocate() }
    let ka = UInt(bitPattern: operands.keys), va = UInt(bitPattern: operands.valuesTransposed)
    let isa = KernelISA.current
    input.withUnsafeFloats { source in
        output.withUnsafeMutableFloats { destination in
            let (sa, oa) = (UInt(bitPattern: source.baseAddress!), UInt(bitPattern: destination.baseAddress!))
            ThreadPool.shared.parallelFor(batch * heads * queryBlocks, minimumChunk: 1) { items in
                let base = UnsafePointer<Float>(bitPattern: sa)!, out = UnsafeMutablePointer<Float>(bitPattern: oa)!
                let keyHeads = UnsafePointer<UInt16>(bitPattern: ka)!, valueHeads = UnsafePointer<UInt16>(bitPattern: va)!
                let scratch = FlashAttentionKernel.Scratch(blocks)
                let packedBytes = max(chatter_gemm_bf16_packed_a_bytes(blocks.query, dim),
                                      chatter_gemm_bf16_packed_a_bytes(blocks.query, blocks.keys))
                let packedQueries = UnsafeMutableRawPointer.allocate(byteCount: packedBytes, alignment: 64)
                let packedProbabilities = UnsafeMutableRawPointer.allocate(byteCount: packedBytes, alignment: 64)
                defer { packedQueries.deallocate(); packedProbabilities.deallocate() }
                for item in items {
                    let bh = item / queryBlocks, b = bh / heads, h = bh % heads
                    let first = (item % queryBlocks) * blocks.query, rows = min(blocks.query, length - first)
                    let query = base + b * length * width + first * width + h * dim
                    let target = out + (b * length + first) * inner + h * dim
                    let keys = keyHeads + bh * length * dim, valuesT = valueHeads + bh * length * dim
                    let strips = (rows + Int(CHATTER_GEMM_BF16_MR) - 1) / Int(CHATTER_GEMM_BF16_MR)
                    var done = chatter_gemm_bf16_pack_a(query, width, rows, dim, packedQueries, 0, strips)
                    scratch.begin(rows: rows)
                    for keyStart in stride(from: 0, to: length, by: blocks.keys) {
                        let count = min(blocks.keys, length - keyStart)
                        done &= chatter_gemm_bf16_run(packedQueries, rows, dim, keys + keyStart * dim, dim, nil,
                                                      scratch.scores, scratch.scoresStride, 0, rows, 0, count, 0)
                        scratch.update(rows: rows, keys: count, out: target, outStride: inner, dim: dim, isa: isa)
                        done &= chatter_gemm_bf16_pack_a(scratch.scores, scratch.scoresStride, rows, count, packedProbabilities, 0, strips)
                        // Row d of the transposed values holds value d of every key: the block starts keyStart in.
                        done &= chatter_gemm_bf16_run(packedProbabilities, rows, count, valuesT + keyStart, length, nil,
                                                      target, inner, 0, rows, 0, dim, 1)
                    }
                    precondition(done == 1, "bf16 attention needs avx512_bf16")
                    scratch.finish(rows: rows, out: target, outStride: inner, dim: dim)
                }
            }
        }
    }
}

/// The bf16 operands of packed attention with bf16 products, per (batch, head): keys with the scale
/// folded in [T, D] and values transposed [D, T] (the bf16 GEMM's second operand is [N, K]), rounded
/// once (round to nearest even) across the pool.
struct PackedHeadsBF16 {
    let keys: UnsafeMutablePointer<UInt16>
    let valuesTransposed: UnsafeMutablePointer<UInt16>

    init(_ input: Tensor, heads: Int, scale: Float) {
        let (batch, length, width) = (input.shape[0], input.shape[1], input.shape[2])
        let inner = width / 3, dim = inner / heads
        let headElements = length * dim
        keys = .allocate(capacity: 2 * batch * heads * headElements)
        valuesTransposed = keys + batch * heads * headElements
        let (ka, va) = (UInt(bitPattern: keys), UInt(bitPattern: valuesTransposed))
        input.withUnsafeFloats { source in
            let sa = UInt(bitPattern: source.baseAddress!)
            ThreadPool.shared.parallelFor(batch * heads, minimumChunk: 1) { items in
                let base = UnsafePointer<Float>(bitPattern: sa)!
                let k = UnsafeMutablePointer<UInt16>(bitPattern: ka)!, v = UnsafeMutablePointer<UInt16>(bitPattern: va)!
                let scaled = UnsafeMutablePointer<Float>.allocate(capacity: dim)
                defer { scaled.deallocate() }
                for item in items {
                    let b = item / heads, h = item % heads
                    let sequence = base + b * length * width
                    let keyOut = k + item * headElements, valueOut = v + item * headElements
                    // Keys: each row scaled in f32, then rounded by the vectorised narrowing (the
                    // bits of `BFloat16.init`); a scalar conversion per element took ~3 % of a bf16
                    // S3Gen pass in perf.
                    for t in 0..<length {
                        let key = sequence + t * width + inner + h * dim
                        for d in 0..<dim { scaled[d] = key[d] * scale }
                        chatter_kv_narrow_isa(KernelISA.current.c, CHATTER_KV_BF16, scaled, keyOut + t * dim, dim)
                    }
                    // Values [T, D] (row stride `width`) → [D, T]: the convolution input's transpose
                    // (16 × 16 in registers, `vcvtneps2bf16`), reading the head's rows as its channels.
                    let transposed = chatter_conv_input_bf16(sequence + 2 * inner + h * dim, width, length, dim, valueOut, length, 0, dim)
                    precondition(transposed == 1, "bf16 attention needs avx512_bf16")
                }
            }
        }
    }

    func deallocate() { keys.deallocate() }
}

// MARK: - Relative-position attention (the flow encoder's conformer blocks)

/// ESPnet / WeNet `RelPositionMultiHeadedAttention` ("rel_selfattn") without a mask, heads merged:
/// `query`, `key`, `value` [n, H·D] (the three projections), `positions` [2n−1, H·D] (the positional
/// table through linear_pos; row r is relative distance n−1−r), `biasU`, `biasV` H·D values (pos_bias_u
/// and pos_bias_v, [H, D]) → [n, H·D] with, per head,
///
///     scores[i, j] = ((q_i + u)·k_j + (q_i + v)·p_{n−1−i+j}) · scale,   out_i = Σ_j softmax_j(scores[i])·v_j
///
/// (upstream's matrix_ac + rel_shift(matrix_bd)). `.fused` (the default) is the flash loop of
/// `FlashAttentionKernel`, whose positional term for a (query block, key block) pair is one sgemm of
/// the biased queries against the band of queryBlock + keyBlock − 1 rows of `positions` the pair
/// reaches, read diagonally by the online softmax step: no n×n or n×(2n−1) matrix, heads read in
/// place as strided views. `.unfused` builds both matrices per head (the reference).
public func relativePositionSelfAttention(query: Tensor, key: Tensor, value: Tensor, positions: Tensor,
                                          biasU: Tensor, biasV: Tensor, heads: Int, scale: Float? = nil,
                                          algorithm: AttentionAlgorithm = .fused, isa: KernelISA = .current) -> Tensor {
    precondition(query.rank == 2 && heads > 0 && query.shape[1] % heads == 0,
                 "relative-position attention expects query [n, heads·D], got \(query.shape) for \(heads) heads")
    let (n, width) = (query.shape[0], query.shape[1])
    precondition(key.shape == query.shape && value.shape == query.shape,
                 "relative-position attention: key \(key.shape) and value \(value.shape) must be \(query.shape)")
    precondition(positions.shape == [max(0, 2 * n - 1), width],
                 "relative-position attention: positions must be [\(2 * n - 1), \(width)], got \(positions.shape)")
    precondition(biasU.count == width && biasV.count == width,
                 "relative-position attention: biases must hold \(width) values, got \(biasU.count) and \(biasV.count)")
    let dim = width / heads
    let scale = scale ?? 1 / Float(dim).squareRoot()
    guard n > 0, dim > 0 else { return Tensor(zeros: [n, width]) }
    switch algorithm {
    case .unfused:
        return relativePositionSelfAttentionUnfused(query: query, key: key, value: value, positions: positions,
                                                    biasU: biasU, biasV: biasV, heads: heads, scale: scale)
    case .fused:
        return flashRelativePositionSelfAttention(query: query.contiguousF32(), key: key.contiguousF32(),
                                                  value: value.contiguousF32(), positions: positions.contiguousF32(),
                                                  biasU: biasU.contiguousF32(), biasV: biasV.contiguousF32(), heads: heads,
                                                  scale: scale, isa: isa)
    }
}

/// The fused relative-position attention. Per (head, query block): the block's queries with each bias
/// added (queryBlock·D each: the only copies, as the unfused op adds them), then per key block
///
///     S    = (q + u)_block · K_blockᵀ                                  [rows, keys]
///     band = (q + v)_block · P_bandᵀ, P_band = positions[n−1−(last query)+first key …]   [rows, rows + keys − 1]
///
/// and the online softmax step combines S[a, c] + band[a, rows − 1 − a + c] (= the relative distance
/// n−1−i+j) and scales, as the unfused op does before its softmax.
func flashRelativePositionSelfAttention(query: Tensor, key: Tensor, value: Tensor, positions: Tensor,
                                        biasU: Tensor, biasV: Tensor, heads: Int, scale: Float, isa: KernelISA,
                                        blocks: FlashAttentionKernel.Blocks = .standard) -> Tensor {
    let (n, width) = (query.shape[0], query.shape[1])
    let dim = width / heads
    let output = Tensor(zeros: [n, width])
    let queryBlocks = (n + blocks.query - 1) / blocks.query
    let bandStride = blocks.query + blocks.keys - 1
    GEMMThreading.useSingleThreadedBLAS()
    let address = { (tensor: Tensor) in tensor.withUnsafeFloats { UInt(bitPattern: $0.baseAddress!) } }
    let (qa, ka, va, pa) = (address(query), address(key), address(value), address(positions))
    let (ua, ba) = (address(biasU), address(biasV))
    let oa = output.withUnsafeMutableFloats { UInt(bitPattern: $0.baseAddress!) }
    withExtendedLifetime((query, key, value, positions, biasU, biasV, output)) {
        ThreadPool.shared.parallelFor(heads * queryBlocks, minimumChunk: 1) { items in
            let q = UnsafePointer<Float>(bitPattern: qa)!, k = UnsafePointer<Float>(bitPattern: ka)!
            let v = UnsafePointer<Float>(bitPattern: va)!, p = UnsafePointer<Float>(bitPattern: pa)!
            let u = UnsafePointer<Float>(bitPattern: ua)!, bv = UnsafePointer<Float>(bitPattern: ba)!
            let out = UnsafeMutablePointer<Float>(bitPattern: oa)!
            let scratch = FlashAttentionKernel.Scratch(blocks)
            let withU = UnsafeMutablePointer<Float>.allocate(capacity: blocks.query * dim)
            let withV = UnsafeMutablePointer<Float>.allocate(capacity: blocks.query * dim)
            let band = UnsafeMutablePointer<Float>.allocate(capacity: blocks.query * bandStride)
            defer { withU.deallocate(); withV.deallocate(); band.deallocate() }
            for item in items {
                let h = item / queryBlocks, first = (item % queryBlocks) * blocks.query
                let rows = min(blocks.query, n - first)
                let column = h * dim
                for r in 0..<rows {
                    let row = q + (first + r) * width + column
                    for d in 0..<dim {
                        withU[r * dim + d] = row[d] + u[column + d]
                        withV[r * dim + d] = row[d] + bv[column + d]
                    }
                }
                let target = out + first * width + column
                scratch.begin(rows: rows)
                for keyStart in stride(from: 0, to: n, by: blocks.keys) {
                    let count = min(blocks.keys, n - keyStart)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(dim),
                                1, withU, Int32(dim), k + keyStart * width + column, Int32(width),
                                0, scratch.scores, Int32(scratch.scoresStride))
                    // Query first + a against key keyStart + c is relative row n−1−first−a+keyStart+c.
                    let bandFirst = n - 1 - (first + rows - 1) + keyStart, bandRows = rows + count - 1
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(bandRows), Int32(dim),
                                1, withV, Int32(dim), p + bandFirst * width + column, Int32(width),
                                0, band, Int32(bandStride))
                    scratch.update(rows: rows, keys: count, band: band, bandStride: bandStride, scale: scale,
                                   out: target, outStride: width, dim: dim, isa: isa)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dim), Int32(count),
                                1, scratch.scores, Int32(scratch.scoresStride), v + keyStart * width + column, Int32(width),
                                1, target, Int32(width))
                }
                scratch.finish(rows: rows, out: target, outStride: width, dim: dim)
            }
        }
    }
    return output
}

/// The reference relative-position attention (what the flow encoder ran before the fused kernel):
/// per head, the biased queries, AC = (q + u)·kᵀ [n, n] and BD = (q + v)·pᵀ [n, 2n−1] as full
/// matrices, scores = (AC[i, j] + BD[i, n−1−i+j]) · scale, softmax, · v.
func relativePositionSelfAttentionUnfused(query: Tensor, key: Tensor, value: Tensor, positions: Tensor,
                                          biasU: Tensor, biasV: Tensor, heads: Int, scale: Float) -> Tensor {
    let (n, width) = (query.shape[0], query.shape[1])
    let dk = width / heads
    let context = Tensor(zeros: [n, width])
    let u = biasU.scalars(), bv = biasV.scalars()
    for h in 0..<heads {
        let cols = (h * dk)..<((h + 1) * dk)
        let qh = query.slice(1, cols).contiguous()
        let kh = key.slice(1, cols).contiguous()
        let vh = value.slice(1, cols).contiguous()
        let ph = positions.slice(1, cols).contiguous()
        let qu = add(qh, Tensor(shape: [dk], scalars: Array(u[cols])))
        let qv = add(qh, Tensor(shape: [dk], scalars: Array(bv[cols])))
        let ac = matmul(qu, kh, transposeB: true)   // [n, n]
        let bd = matmul(qv, ph, transposeB: true)   // [n, 2n−1]
        // scores[i, j] = (AC[i, j] + BD[i, n−1−i+j]) / √dk  (the rel_shift trick).
        ac.withUnsafeMutableFloats { s in
            bd.withUnsafeFloats { b in
                for i in 0..<n {
                    let row = s.baseAddress! + i * n, brow = b.baseAddress! + i * (2 * n - 1) + (n - 1 - i)
                    for j in 0..<n { row[j] = (row[j] + brow[j]) * scale }
                }
            }
        }
        softmaxInPlace(ac)
        let oh = matmul(ac, vh)  // [n, dk]
        oh.withUnsafeFloats { o in
            context.withUnsafeMutableFloats { c in
                for i in 0..<n {
                    (c.baseAddress! + i * width + h * dk).update(from: o.baseAddress! + i * dk, count: dk)
                }
            }
        }
    }
    return context
}
