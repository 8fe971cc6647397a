import RealModule

/// A mask for `scaledDotProductAttention`, broadcastable to [B, H, Tq, Tk], with PyTorch's meaning.
public enum AttentionMask {
    /// `true` (non-zero) where the query may attend to the key.
    case boolean(Tensor)
    /// Added to the scaled scores before the softmax (−inf, or −1e10 as the CFM decoder does, to exclude).
    case additive(Tensor)
}

/// `F.scaled_dot_product_attention` for q [B, H, Tq, D], k and v [B, H, Tk, D]:
/// softmax(q·kᵀ·scale + mask) · v, scale defaulting to 1/√D. `causal` is PyTorch's `is_causal`:
/// query i sees keys j ≤ i (aligned top-left, also when Tq ≠ Tk). A query row with no visible key
/// gives zeros, as PyTorch's math backend does since 2.5.
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask? = nil,
                                      causal: Bool = false, scale: Float? = nil) -> Tensor {
    AttentionKernel.run(query: query, key: key, value: value, mask: mask, causalOffset: causal ? 0 : nil,
                        scale: scale, probabilities: nil, scratch: nil)
}

/// As `scaledDotProductAttention`, also returning the post-softmax probabilities [B, H, Tq, Tk]
/// (what the multilingual alignment analyser reads).
public func scaledDotProductAttentionWithProbabilities(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask? = nil,
                                                       causal: Bool = false, scale: Float? = nil) -> (output: Tensor, probabilities: Tensor) {
    precondition(query.rank == 4 && key.rank == 4, "attention expects [B, H, T, D] operands, got q \(query.shape), k \(key.shape)")
    let probabilities = Tensor(zeros: [query.shape[0], query.shape[1], query.shape[2], key.shape[2]])
    let output = AttentionKernel.run(query: query, key: key, value: value, mask: mask, causalOffset: causal ? 0 : nil,
                                     scale: scale, probabilities: probabilities, scratch: nil)
    return (output, probabilities)
}

enum AttentionKernel {
    /// Work (Tq·Tk·D multiply-adds per head) above which QKᵀ and PV go through sgemm; below it the
    /// call overhead and packing cost more than direct loops (decode has Tq = 1 and is always below).
    static let gemmThreshold = 1 << 16

    /// A tensor's element pointer and strides, for operands that are [B, H, T, D] with unit stride
    /// on D (the KV cache's views are, with a head stride larger than T·D).
    struct Operand {
        let base: UnsafePointer<Float>
        let strides: [Int]
        @inline(__always) func head(_ b: Int, _ h: Int) -> UnsafePointer<Float> { base + b * strides[0] + h * strides[1] }
        var rowStride: Int { strides[2] }
    }

    static func prepared(_ t: Tensor) -> Tensor {
        if t.dtype == .f32 && t.strides[3] == 1 && t.isRowwiseLayout { return t }
        return t.contiguousF32()
    }

    /// - causalOffset: query i sees keys j ≤ i + offset (nil: no causal limit). SDPA's `is_causal` is
    ///   0; a KV cache holding Tk − Tq earlier tokens uses Tk − Tq.
    /// - scratch: Tq·Tk floats per (b, h) pair for the scores when `probabilities` is nil.
    static func run(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask?, causalOffset: Int?,
                    scale: Float?, probabilities: Tensor?, scratch: UnsafeMutablePointer<Float>?,
                    into destination: Tensor? = nil) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "attention expects [B, H, T, D] operands, got q \(query.shape), k \(key.shape), v \(value.shape)")
        let (batch, heads, tq, dim) = (query.shape[0], query.shape[1], query.shape[2], query.shape[3])
        let tk = key.shape[2], dv = value.shape[3]
        precondition(key.shape == [batch, heads, tk, dim], "attention: key \(key.shape) does not match query \(query.shape)")
        precondition(value.shape[0] == batch && value.shape[1] == heads && value.shape[2] == tk,
                     "attention: value \(value.shape) does not match key \(key.shape)")
        let scale = scale ?? 1 / Float(dim).squareRoot()
        let q = prepared(query), k = prepared(key), v = prepared(value)
        if let destination {
            precondition(destination.shape == [batch, heads, tq, dv] && destination.dtype == .f32 && destination.isContiguous,
                         "attention output must be a contiguous f32 [\(batch), \(heads), \(tq), \(dv)] tensor, got \(destination.shape)")
        }
        let output = destination ?? Tensor(zeros: [batch, heads, tq, dv])
        let target = [batch, heads, tq, tk]

        // The mask as additive f32 with broadcast strides.
        var maskValues: [Float] = []
        var maskStrides = [0, 0, 0, 0]
        if let mask {
            let (tensor, boolean): (Tensor, Bool) = switch mask {
            case .boolean(let t): (t, true)
            case .additive(let t): (t, false)
            }
            precondition(tensor.rank <= 4 && broadcastShape(tensor.shape, target) == target,
                         "attention mask \(tensor.shape) does not broadcast to \(target)")
            maskValues = tensor.scalars()
            if boolean { maskValues = maskValues.map { $0 != 0 ? 0 : -.infinity } }
            maskStrides = broadcastStrides(tensor.shape, to: target)
        }

        let useGemm = tq * tk * dim >= gemmThreshold
        let pairScores = tq * tk
        let ownedScratch: UnsafeMutablePointer<Float>? = probabilities == nil && scratch == nil
            ? .allocate(capacity: max(1, batch * heads * pairScores)) : nil
        defer { ownedScratch?.deallocate() }
        // The probabilities tensor, when asked for, is the score buffer itself (it outlives this call,
        // so its pointer may leave the closure).
        let scores: UnsafeMutablePointer<Float> = probabilities.map {
            $0.withUnsafeMutableFloats { $0.baseAddress! }
        } ?? scratch ?? ownedScratch!

        q.withUnsafeFloatsStrided { qp in
        k.withUnsafeFloatsStrided { kp in
        v.withUnsafeFloatsStrided { vp in
        maskValues.withUnsafeBufferPointer { mb in
        output.withUnsafeMutableFloats { ob in
            let Q = Operand(base: qp, strides: q.strides), K = Operand(base: kp, strides: k.strides)
            let V = Operand(base: vp, strides: v.strides)
            // An empty array can still have a base address; only a real mask may be read.
            let maskBase = mask == nil ? nil : mb.baseAddress
            let out = ob.baseAddress!

            /// Masks, limits and normalises row i of pair (b, h) in place.
            func finishRow(_ b: Int, _ h: Int, _ i: Int, _ row: UnsafeMutablePointer<Float>) {
                var visible = tk
                if let offset = causalOffset { visible = max(0, min(tk, i + offset + 1)) }
                if let maskBase {
                    let m = maskBase + b * maskStrides[0] + h * maskStrides[1] + i * maskStrides[2]
                    let sj = maskStrides[3]
                    for j in 0..<visible { row[j] += m[j * sj] }
                }
                let peak = visible > 0 ? SoftmaxKernel.rowMax(row, visible) : -.infinity
                if peak == -.infinity {
                    row.update(repeating: 0, count: tk)
                    return
                }
                let sum = SoftmaxKernel.expShifted(row, row, visible, peak)
                SoftmaxKernel.scale(row, visible, 1 / sum)
                if visible < tk { (row + visible).update(repeating: 0, count: tk - visible) }
            }

            if useGemm {
                // Heads one after another, each GEMM and softmax split across our pool.
                for b in 0..<batch {
                    for h in 0..<heads {
                        let s = scores + (b * heads + h) * pairScores
                        GEMMThreading.sgemm(transposeA: false, transposeB: true, m: tq, n: tk, k: dim, alpha: scale,
                                            a: Q.head(b, h), lda: Q.rowStride, b: K.head(b, h), ldb: K.rowStride,
                                            beta: 0, c: s, ldc: tk)
                        let rowBody: (Range<Int>) -> Void = { rows in
                            for i in rows { finishRow(b, h, i, s + i * tk) }
                        }
                        if pairScores < 2 * PointwiseLoop.parallelGrain { rowBody(0..<tq) } else {
                            ThreadPool.shared.parallelFor(tq, minimumChunk: max(1, PointwiseLoop.parallelGrain / tk), rowBody)
                        }
                        GEMMThreading.sgemm(transposeA: false, transposeB: false, m: tq, n: dv, k: tk, alpha: 1,
                                            a: s, lda: tk, b: V.head(b, h), ldb: V.rowStride,
                                            beta: 0, c: out + (b * heads + h) * tq * dv, ldc: dv)
                    }
                }
                return
            }

            // Direct loops, parallel over (b, h, query row).
            let rows = batch * heads * tq
            let body: (Range<Int>) -> Void = { range in
                for r in range {
                    let b = r / (heads * tq), h = (r / tq) % heads, i = r % tq
                    let s = scores + (b * heads + h) * pairScores + i * tk
                    let qRow = Q.head(b, h) + i * Q.rowStride
                    let kHead = K.head(b, h)
                    var visible = tk
                    if let offset = causalOffset { visible = max(0, min(tk, i + offset + 1)) }
                    for j in 0..<visible { s[j] = dot(qRow, kHead + j * K.rowStride, dim) * scale }
                    finishRow(b, h, i, s)
                    let o = out + r * dv
                    o.update(repeating: 0, count: dv)
                    let vHead = V.head(b, h)
                    for j in 0..<visible where s[j] != 0 {
                        axpy(s[j], vHead + j * V.rowStride, o, dv)
                    }
                }
            }
            let work = rows * tk * (dim + dv)
            if work < 4 * PointwiseLoop.parallelGrain { body(0..<rows) } else {
                ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, (4 * PointwiseLoop.parallelGrain) / max(1, tk * (dim + dv))), body)
            }
        }
        }
        }
        }
        }
        return output
    }

    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n { acc += PointwiseLoop.load(a + i) * PointwiseLoop.load(b + i); i += 16 }
        var total = acc.sum()
        while i < n { total += a[i] * b[i]; i += 1 }
        return total
    }

    /// y += a · x.
    @inline(__always)
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let va = SIMD16<Float>(repeating: a)
        var i = 0
        while i + 16 <= n { PointwiseLoop.store(PointwiseLoop.load(y + i) + va * PointwiseLoop.load(x + i), y + i); i += 16 }
        while i < n { y[i] += a * x[i]; i += 1 }
    }
}

extension Tensor {
    /// True when each [.., T, D] block is row-major (D contiguous, T stride ≥ D) and the outer axes
    /// don't overlap it: the layout sgemm can read with a leading dimension.
    var isRowwiseLayout: Bool {
        guard rank == 4 else { return isContiguous }
        return strides[3] == 1 && strides[2] >= shape[3] && strides[1] >= strides[2] * max(shape[2], 1)
            && strides[0] >= strides[1] * max(shape[1], 1)
    }

    /// The f32 element pointer of a possibly strided view (the caller indexes by `strides`).
    func withUnsafeFloatsStrided<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        precondition(dtype == .f32, "expected f32, have \(dtype)")
        return try body((storage.baseAddress + byteOffset).assumingMemoryBound(to: Float.self))
    }
}
