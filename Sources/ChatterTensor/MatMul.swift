import CChatterKernels
import COpenBLAS

/// Matrix product through OpenBLAS `cblas_sgemm`, f32.
///
/// `a` is [M, K] (or [K, M] with `transposeA`), `b` is [K, N] (or [N, K] with `transposeB`); either
/// may carry a leading batch axis ([B, …]). A 3-D operand against a 2-D one broadcasts the 2-D
/// matrix over the batch; two 3-D operands need equal batches. The result is a new contiguous
/// [M, N] or [B, M, N] tensor.
///
/// Operands are not copied when each matrix has one unit stride: a transposed view of a contiguous
/// matrix becomes BLAS's transpose flag with the original leading dimension.
public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition((2...3).contains(a.rank) && (2...3).contains(b.rank),
                 "matmul needs 2-D or 3-D operands, got \(a.shape) and \(b.shape)")
    precondition(a.dtype == .f32 && b.dtype == .f32, "matmul needs f32 operands, got \(a.dtype) and \(b.dtype)")
    let (m, k) = transposeA ? (a.shape[a.rank - 1], a.shape[a.rank - 2]) : (a.shape[a.rank - 2], a.shape[a.rank - 1])
    let (kb, n) = transposeB ? (b.shape[b.rank - 1], b.shape[b.rank - 2]) : (b.shape[b.rank - 2], b.shape[b.rank - 1])
    precondition(k == kb, "matmul inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
    let batchA = a.rank == 3 ? a.shape[0] : nil, batchB = b.rank == 3 ? b.shape[0] : nil
    if let batchA, let batchB {
        precondition(batchA == batchB, "matmul batch sizes differ: \(a.shape) and \(b.shape)")
    }

    // [B, M, K] · [K, N] is one GEMM with B·M rows when A's batch and row axes fold together.
    if a.rank == 3, b.rank == 2, !transposeA, a.isContiguous {
        return matmul(a.reshaped([a.shape[0] * m, k]), b, transposeB: transposeB).reshaped([a.shape[0], m, n])
    }

    let batch = batchA ?? batchB ?? 1
    let output = Tensor(zeros: (a.rank == 3 || b.rank == 3 ? [batch] : []) + [m, n])
    guard m > 0, n > 0 else { return output }
    if k == 0 { return output }
    let left = BLASMatrix(a), right = BLASMatrix(b)
    output.withUnsafeMutableFloats { c in
        for index in 0..<batch {
            left.withPointer(batch: index) { ap in
                right.withPointer(batch: index) { bp in
                    GEMMThreading.sgemm(transposeA: left.transposed != transposeA, transposeB: right.transposed != transposeB,
                                        m: m, n: n, k: k, alpha: 1, a: ap, lda: left.leadingDimension,
                                        b: bp, ldb: right.leadingDimension, beta: 0, c: c.baseAddress! + index * m * n, ldc: n)
                }
            }
        }
    }
    return output
}

/// PyTorch `nn.functional.linear`: `x · weightᵀ + bias`, `weight` [out, in], `x` [..., in].
///
/// Up to 8 rows go through `gemv` (one pass over the weights, bf16 / f16 / q8_0 weights read as
/// stored); more rows go through `cblas_sgemm`. bf16 weights with more rows use the native bf16 GEMM
/// on CPUs with avx512_bf16 (activations rounded to bf16, as torch's bf16 matmul; see
/// `linearBF16Native`); elsewhere bf16, f16 and q8_0 weights are widened to f32 a block of output
/// features at a time into a cache-sized buffer (no weight-sized allocation; `linearWidened`).
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    linear(x, weight: weight, bias: bias, isa: .current)
}

/// `linear` with the kernels capped at `isa` (lowered to what the CPU has, never raised): benchmarks
/// and tests compare the bf16 GEMM (`.avx512bf16`) with the widen + sgemm path (`.avx512` or lower).
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, isa: KernelISA) -> Tensor {
    precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
    precondition(x.rank >= 1 && x.shape.last == weight.shape[1],
                 "linear input \(x.shape) does not end in the weight's in-features \(weight.shape[1])")
    let rows = x.shape.dropLast().reduce(1, *)
    let outFeatures = weight.shape[0]
    if rows <= gemvMaxRows {
        let output = Tensor(zeros: Array(x.shape.dropLast()) + [outFeatures])
        gemv(x, weight: weight, bias: bias, into: output, isa: min(isa, .current))
        return output
    }
    if let bias {
        precondition(bias.shape == [outFeatures] && bias.dtype == .f32,
                     "linear bias must be f32 [\(outFeatures)], got \(bias.dtype) \(bias.shape)")
    }
    if [.bf16, .f16, .q8_0].contains(weight.dtype) && weight.isContiguous {
        return linearWidened(x, weight: weight, bias: bias, rows: rows, isa: isa)
    }
    let w = weight.dtype == .f32 ? weight : weight.converted(to: .f32)
    let input = x.contiguous().reshaped([rows, weight.shape[1]])
    let matrix = BLASMatrix(w)
    let output = Tensor(zeros: [rows, outFeatures])
    output.withUnsafeMutableFloats { c in
        // Seeding C with the bias and using beta = 1 adds it inside the GEMM, with no second pass.
        if let bias {
            bias.contiguous().withUnsafeFloats { b in
                for row in 0..<rows { (c.baseAddress! + row * outFeatures).update(from: b.baseAddress!, count: outFeatures) }
            }
        }
        input.withUnsafeFloats { xp in
            matrix.withPointer(batch: 0) { wp in
                GEMMThreading.sgemm(transposeA: false, transposeB: !matrix.transposed, m: rows, n: outFeatures, k: weight.shape[1],
                                    alpha: 1, a: xp.baseAddress!, lda: weight.shape[1], b: wp, ldb: matrix.leadingDimension,
                                    beta: bias == nil ? 0 : 1, c: c.baseAddress!, ldc: outFeatures)
            }
        }
    }
    return output.reshaped(Array(x.shape.dropLast()) + [outFeatures])
}

/// `linear` with a contiguous bf16, f16 or q8_0 weight and more than `gemvMaxRows` rows.
///
/// bf16 on CPUs with avx512_bf16 (`KernelISA.avx512bf16`) runs a native bf16 GEMM
/// (`linearBF16Native`): activations rounded to bf16, `vdpbf16ps` products, f32 sums, as torch's
/// bf16 matmul. Otherwise (or with `isa` lowered, as tests do) blocks of output features are widened
/// into one reused f32 buffer (≤ 4 MiB) by the thread pool, then multiplied by `cblas_sgemm` with the
/// f32 activations into the matching output columns: bf16 and f16 widen exactly, q8_0 to
/// f32(scale) · int8, so the result is the f32 product with the dequantised weights.
func linearWidened(_ x: Tensor, weight: Tensor, bias: Tensor?, rows: Int, isa: KernelISA = .current) -> Tensor {
    let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
    let input = x.contiguous().reshaped([rows, inFeatures])
    let output = Tensor(zeros: [rows, outFeatures])
    guard rows > 0, outFeatures > 0, inFeatures > 0 else { return output.reshaped(Array(x.shape.dropLast()) + [outFeatures]) }
    if weight.dtype == .bf16 && isa >= .avx512bf16 && KernelISA.current >= .avx512bf16 {
        linearBF16Native(input, weight: weight, bias: bias, into: output)
        return output.reshaped(Array(x.shape.dropLast()) + [outFeatures])
    }
    let dtype = weight.dtype
    // q8_0 on avx512_bf16: each block dequantised (f32(scale) · int8), rounded to bf16 and multiplied
    // on the native bf16 GEMM with bf16-rounded activations, as bf16 weights are: the GEMM runs at
    // 2.3x the f32 sgemm's rate on T3's shapes (gemm suite, 417 x 1024 x 4096: 195.7 against 83.5
    // GFLOP/s), and a Turbo q8_0 prefill of 417 positions took 0.63-0.66x the widen + sgemm path's
    // time in alternating runs (BENCHMARKS.md, "Turbo q8_0 prefill on the bf16 GEMM"). The rounding adds one
    // bf16 rounding (relative ≤ 2⁻⁹) to each dequantised weight, under q8_0's own quantisation step
    // (≤ 1/254 of a block's largest).
    let bf16GEMM = dtype == .q8_0 && isa >= .avx512bf16 && KernelISA.current >= .avx512bf16
    let rowBytes = dtype.byteCount(elements: inFeatures)!
    let block = max(1, min(outFeatures, (1 << 20) / inFeatures))  // 4 MiB of f32 per block
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: block * inFeatures)
    defer { buffer.deallocate() }
    let narrowed = bf16GEMM ? UnsafeMutablePointer<UInt16>.allocate(capacity: block * inFeatures) : nil
    defer { narrowed?.deallocate() }
    let bufferAddress = UInt(bitPattern: buffer), narrowedAddress = UInt(bitPattern: narrowed)
    let widenISA = min(isa, .current).c
    output.withUnsafeMutableFloats { c in
        if let bias {
            bias.contiguous().withUnsafeFloats { b in
                for row in 0..<rows { (c.baseAddress! + row * outFeatures).update(from: b.baseAddress!, count: outFeatures) }
            }
        }
        input.withUnsafeFloats { xp in
            weight.withUnsafeRawBytes { raw in
                let source = UInt(bitPattern: raw.baseAddress!)
                for start in stride(from: 0, to: outFeatures, by: block) {
                    let n = min(block, outFeatures - start)
                    let blockSource = source + UInt(start * rowBytes)
                    // Threads take whole weight rows (a q8_0 row is whole blocks).
                    ThreadPool.shared.parallelFor(n, minimumChunk: max(1, (1 << 16) / inFeatures)) { range in
                        let from = UnsafeRawPointer(bitPattern: blockSource + UInt(range.lowerBound * rowBytes))!
                        let to = UnsafeMutablePointer<Float>(bitPattern: bufferAddress)! + range.lowerBound * inFeatures
                        let count = range.count * inFeatures
                        switch dtype {
                        case .bf16:
                            let s = from.assumingMemoryBound(to: UInt16.self)
                            let d = UnsafeMutableRawPointer(to).assumingMemoryBound(to: UInt32.self)
                            for i in 0..<count { d[i] = UInt32(s[i]) << 16 }
                        case .f16:
                            _ = chatter_widen_f16_isa(widenISA, from.assumingMemoryBound(to: UInt16.self), to, count)
                        default:
                            _ = chatter_widen_q8_0_isa(widenISA, from.assumingMemoryBound(to: UInt8.self), to,
                                                       count / Quantization.blockElements)
                            if narrowedAddress != 0 {
                                _ = chatter_kv_narrow_isa(widenISA, CHATTER_KV_BF16, to,
                                                          UnsafeMutablePointer<UInt16>(bitPattern: narrowedAddress)! + range.lowerBound * inFeatures,
                                                          count)
                            }
                        }
                    }
                    if let narrowed {  // C already holds the bias (seeded above), as for sgemm's beta = 1
                        gemmBF16(a: xp.baseAddress!, lda: inFeatures, m: rows, k: inFeatures, weight: narrowed, ldw: inFeatures, n: n,
                                 bias: nil, c: c.baseAddress! + start, ldc: outFeatures, accumulate: bias != nil)
                        continue
                    }
                    GEMMThreading.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: inFeatures, alpha: 1,
                                        a: xp.baseAddress!, lda: inFeatures, b: buffer, ldb: inFeatures,
                                        beta: bias == nil ? 0 : 1, c: c.baseAddress! + start, ldc: outFeatures)
                }
            }
        }
    }
    return output.reshaped(Array(x.shape.dropLast()) + [outFeatures])
}

/// The avx512_bf16 GEMM behind `linearWidened`: `output = input · weightᵀ + bias`, `input` contiguous
/// f32 [M, K], `weight` contiguous bf16 [N, K] (read in place), `output` contiguous f32 [M, N].
///
/// Why rounding the activations is acceptable: it is what the reference does. A bf16 PyTorch model
/// multiplies bf16 activations by bf16 weights with f32 accumulation (oneDNN, the same instruction),
/// so this path follows upstream bf16 more closely than the f32-activation sgemm path; against f32
/// activations each product gains a relative error ≤ 2⁻⁸ (one bf16 rounding: 8 significant bits),
/// ~1e-3 on a layer's output, well inside the 2e-2 bf16-vs-f32 logit bound the T3 tests hold.
///
/// `accumulate` adds the product to what `output` holds instead of overwriting it.
func linearBF16Native(_ input: Tensor, weight: Tensor, bias: Tensor?, into output: Tensor, accumulate: Bool = false) {
    let m = input.shape[0], k = input.shape[1], n = weight.shape[0]
    precondition(input.dtype == .f32 && weight.dtype == .bf16 && weight.shape[1] == k && output.shape == [m, n],
                 "linearBF16Native: input \(input.dtype) \(input.shape), weight \(weight.dtype) \(weight.shape), output \(output.shape)")
    guard m > 0, n > 0 else { return }
    guard k > 0 else {  // an empty sum: C (+)= bias
        let b = bias?.scalars() ?? [Float](repeating: 0, count: n)
        output.withUnsafeMutableFloats { c in
            for i in 0..<m { for j in 0..<n { c[i * n + j] = (accumulate ? c[i * n + j] : 0) + b[j] } }
        }
        return
    }
    precondition(input.isContiguous && weight.isContiguous && output.isContiguous, "linearBF16Native needs contiguous operands")
    let biasValues = bias?.contiguous()
    input.withUnsafeFloats { xBuffer in
        output.withUnsafeMutableFloats { yBuffer in
            weight.withUnsafeRawBytes { wBuffer in
                withOptionalFloats(biasValues) { biasPointer in
                    gemmBF16(a: xBuffer.baseAddress!, lda: k, m: m, k: k,
                             weight: wBuffer.baseAddress!.assumingMemoryBound(to: UInt16.self), ldw: k, n: n,
                             bias: biasPointer, c: yBuffer.baseAddress!, ldc: n, accumulate: accumulate)
                }
            }
        }
    }
}

/// Calls `body` with the floats of `tensor` (contiguous), or with nil when there is none.
private func withOptionalFloats<R>(_ tensor: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let tensor else { return body(nil) }
    return tensor.withUnsafeFloats { body($0.baseAddress) }
}

/// The avx512_bf16 GEMM on raw operands: `c[i·ldc + j] (+)= bias[j] + Σ_t bf16(a[i·lda + t]) · weight[j·ldw + t]`
/// for i < m, j < n, t < k (`chatter_gemm_bf16_*`). With `segmentPairs` > 0 a row of `weight` is
/// runs of 2 · segmentPairs values, run s at `weight + j·ldw + s·segmentStride`
/// (`chatter_gemm_bf16_run_segmented`): rows and runs may overlap, which is how a convolution reads
/// its input as the unfolded matrix without writing it (`conv1d`).
///
/// Work split: the activations are rounded and packed once (strips of `CHATTER_GEMM_BF16_MR` rows,
/// split across the pool), then the output is cut into tiles of 128 columns (and into row blocks
/// when there are too few column tiles to feed every thread) that the pool's threads claim as they
/// go, as `gemv` does, so a thread that loses its core delays the call by one tile at most.
func gemmBF16(a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, weight: UnsafePointer<UInt16>, ldw: Int, n: Int,
              segmentPairs: Int = 0, segmentStride: Int = 0,
              bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    guard m > 0, n > 0, k > 0 else { return }
    let packed = UnsafeMutableRawPointer.allocate(byteCount: chatter_gemm_bf16_packed_a_bytes(m, k), alignment: 64)
    defer { packed.deallocate() }
    gemmBF16(packing: a, lda: lda, into: packed, m: m, k: k, weight: weight, ldw: ldw, n: n,
             segmentPairs: segmentPairs, segmentStride: segmentStride, bias: bias, c: c, ldc: ldc, accumulate: accumulate)
}

/// `gemmBF16` over activations already packed by `chatter_gemm_bf16_pack_a` (all strips of m × k):
/// a convolution's weight, packed once by `PackedConvWeightBF16`.
func gemmBF16(packedA: UnsafeRawPointer, m: Int, k: Int, weight: UnsafePointer<UInt16>, ldw: Int, n: Int,
              segmentPairs: Int = 0, segmentStride: Int = 0,
              bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    guard m > 0, n > 0, k > 0 else { return }
    gemmBF16(packing: nil, lda: 0, into: UnsafeMutableRawPointer(mutating: packedA), m: m, k: k, weight: weight, ldw: ldw, n: n,
             segmentPairs: segmentPairs, segmentStride: segmentStride, bias: bias, c: c, ldc: ldc, accumulate: accumulate)
}

/// The work of both: packs `a` into `packed` first unless `a` is nil (`packed` then holds it already).
private func gemmBF16(packing a: UnsafePointer<Float>?, lda: Int, into packed: UnsafeMutableRawPointer, m: Int, k: Int,
                      weight: UnsafePointer<UInt16>, ldw: Int, n: Int, segmentPairs: Int, segmentStride: Int,
                      bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    let mr = Int(CHATTER_GEMM_BF16_MR)
    let strips = (m + mr - 1) / mr
    let pool = ThreadPool.shared
    let tileColumns = 128
    let columnTiles = (n + tileColumns - 1) / tileColumns
    // Too few column tiles for the threads (narrow outputs): cut the rows too, in whole strips.
    let rowBlocks = columnTiles >= 2 * pool.threadCount ? 1 : min(strips, (2 * pool.threadCount + columnTiles - 1) / columnTiles)
    let blockRows = (strips + rowBlocks - 1) / rowBlocks * mr
    let tiles = columnTiles * rowBlocks
    let accumulating: Int32 = accumulate ? 1 : 0
    // Below ~2 M multiply-adds a pool hand-off (a few µs) costs more than a second thread saves.
    let parallel = pool.threadCount > 1 && m * n * k >= 1 << 21
    // Pointers cross into the pool's closures as bit patterns (raw pointers are not Sendable); every
    // buffer outlives the synchronous parallelFor calls.
    let xa = UInt(bitPattern: a), ya = UInt(bitPattern: c), wa = UInt(bitPattern: weight), pa = UInt(bitPattern: packed)
    let ba = UInt(bitPattern: bias)
    let pack = { (range: Range<Int>) in
        guard let source = UnsafePointer<Float>(bitPattern: xa) else { return }  // packed already
        let done = chatter_gemm_bf16_pack_a(source, lda, m, k, UnsafeMutableRawPointer(bitPattern: pa)!, range.lowerBound, range.upperBound)
        precondition(done == 1, "bf16 GEMM packing needs avx512_bf16")
    }
    let runTile = { (tile: Int) in
        let columns = (tile % columnTiles) * tileColumns, rows = (tile / columnTiles) * blockRows
        let done = segmentPairs > 0
            ? chatter_gemm_bf16_run_segmented(UnsafeRawPointer(bitPattern: pa)!, m, k, UnsafePointer<UInt16>(bitPattern: wa)!, ldw,
                                              segmentPairs, segmentStride, UnsafePointer<Float>(bitPattern: ba),
                                              UnsafeMutablePointer<Float>(bitPattern: ya)!, ldc,
                                              rows, min(m, rows + blockRows), columns, min(n, columns + tileColumns), accumulating)
            : chatter_gemm_bf16_run(UnsafeRawPointer(bitPattern: pa)!, m, k, UnsafePointer<UInt16>(bitPattern: wa)!, ldw,
                                    UnsafePointer<Float>(bitPattern: ba), UnsafeMutablePointer<Float>(bitPattern: ya)!, ldc,
                                    rows, min(m, rows + blockRows), columns, min(n, columns + tileColumns), accumulating)
        precondition(done == 1, "bf16 GEMM needs avx512_bf16 and strip-aligned row blocks")
    }
    if !parallel {
        pack(0..<strips)
        for tile in 0..<tiles { runTile(tile) }
        return
    }
    if a != nil { pool.parallelFor(strips, minimumChunk: 4, pack) }
    let next = TileCounter()
    pool.parallelFor(min(pool.threadCount, tiles)) { _ in
        while case let tile = next.claim(), tile < tiles { runTile(tile) }
    }
}

/// How one operand of a GEMM is handed to BLAS: a row-major matrix (or batch of them) described by
/// a leading dimension and whether it is stored transposed relative to its logical shape.
struct BLASMatrix {
    /// The tensor whose storage is read (the operand itself, or a contiguous copy).
    let source: Tensor
    /// True when the logical [rows, cols] matrix is stored column-major (a transposed view).
    let transposed: Bool
    let leadingDimension: Int
    let batchStride: Int

    init(_ tensor: Tensor) {
        let rank = tensor.rank
        let rows = tensor.shape[rank - 2], cols = tensor.shape[rank - 1]
        let rowStride = tensor.strides[rank - 2], colStride = tensor.strides[rank - 1]
        let batchStride = rank == 3 ? tensor.strides[0] : 0
        // A size-1 axis may carry any stride; only the axis that moves matters.
        if (cols == 1 || colStride == 1) && (rows == 1 || rowStride >= cols) && rowStride >= 0 {
            self.init(source: tensor, transposed: false, leadingDimension: rows == 1 ? max(1, cols) : max(1, rowStride),
                      batchStride: batchStride)
        } else if (rows == 1 || rowStride == 1) && (cols == 1 || colStride >= rows) && colStride >= 0 {
            self.init(source: tensor, transposed: true, leadingDimension: cols == 1 ? max(1, rows) : max(1, colStride),
                      batchStride: batchStride)
        } else {
            let copy = tensor.copy()
            self.init(source: copy, transposed: false, leadingDimension: max(1, cols),
                      batchStride: rank == 3 ? rows * cols : 0)
        }
    }

    private init(source: Tensor, transposed: Bool, leadingDimension: Int, batchStride: Int) {
        self.source = source
        self.transposed = transposed
        self.leadingDimension = leadingDimension
        self.batchStride = batchStride
    }

    /// Calls `body` with the first element of matrix `batch` (a 2-D operand repeats for every batch).
    func withPointer<R>(batch: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
        let base = (source.storage.baseAddress + source.byteOffset).assumingMemoryBound(to: Float.self)
        return withExtendedLifetime(source) { body(base + batch * batchStride) }
    }
}
