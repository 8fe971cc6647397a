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
/// Up to 8 rows go through `gemv` (one pass over the weights, bf16 / q8_0 weights read as stored);
/// more rows go through `cblas_sgemm`. bf16 weights with more rows are widened to f32 a block of
/// output features at a time into a cache-sized buffer (no weight-sized allocation); q8_0 weights
/// with more than 8 rows are widened whole per call: keep weights of compute-bound layers in f32.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2, "linear weight must be [out, in], got \(weight.shape)")
    precondition(x.rank >= 1 && x.shape.last == weight.shape[1],
                 "linear input \(x.shape) does not end in the weight's in-features \(weight.shape[1])")
    let rows = x.shape.dropLast().reduce(1, *)
    let outFeatures = weight.shape[0]
    if rows <= gemvMaxRows {
        return gemv(x, weight: weight, bias: bias)
    }
    if let bias {
        precondition(bias.shape == [outFeatures] && bias.dtype == .f32,
                     "linear bias must be f32 [\(outFeatures)], got \(bias.dtype) \(bias.shape)")
    }
    if weight.dtype == .bf16 && weight.isContiguous {
        return linearBF16(x, weight: weight, bias: bias, rows: rows)
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

/// `linear` with a contiguous bf16 weight and more than `gemvMaxRows` rows: blocks of output
/// features are widened (exactly: bf16 is the top half of an f32) into one reused f32 buffer by the
/// thread pool, then multiplied by `cblas_sgemm` into the matching output columns.
func linearBF16(_ x: Tensor, weight: Tensor, bias: Tensor?, rows: Int) -> Tensor {
    let outFeatures = weight.shape[0], inFeatures = weight.shape[1]
    let input = x.contiguous().reshaped([rows, inFeatures])
    let output = Tensor(zeros: [rows, outFeatures])
    guard rows > 0, outFeatures > 0, inFeatures > 0 else { return output.reshaped(Array(x.shape.dropLast()) + [outFeatures]) }
    let block = max(1, min(outFeatures, (1 << 20) / inFeatures))  // 4 MiB of f32 per block
    let buffer = UnsafeMutablePointer<UInt32>.allocate(capacity: block * inFeatures)
    defer { buffer.deallocate() }
    let bufferAddress = UInt(bitPattern: buffer)
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
                    let blockSource = source + UInt(start * inFeatures * 2)
                    ThreadPool.shared.parallelFor(n * inFeatures, minimumChunk: 1 << 16) { range in
                        let s = UnsafePointer<UInt16>(bitPattern: blockSource)!
                        let d = UnsafeMutablePointer<UInt32>(bitPattern: bufferAddress)!
                        for i in range { d[i] = UInt32(s[i]) << 16 }
                    }
                    let wp = UnsafeRawPointer(buffer).assumingMemoryBound(to: Float.self)
                    GEMMThreading.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: inFeatures, alpha: 1,
                                        a: xp.baseAddress!, lda: inFeatures, b: wp, ldb: inFeatures,
                                        beta: bias == nil ? 0 : 1, c: c.baseAddress! + start, ldc: outFeatures)
                }
            }
        }
    }
    return output.reshaped(Array(x.shape.dropLast()) + [outFeatures])
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
