import CChatterKernels
import RealModule

/// Softmax and log-softmax, stable form (the row maximum is subtracted before exponentiating, so
/// logits of any magnitude work). A row that is all −inf gives NaN, as in PyTorch.
enum SoftmaxKernel {
    typealias L = PointwiseLoop

    @inline(__always)
    static func rowMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        var nan = SIMDMask<SIMD16<Int32>>()
        // Compare-and-select, not pointwiseMax (which runs per lane); NaN logits are tracked apart
        // so that they poison the row as in torch.
        while i + 16 <= n {
            let v = L.load(p + i)
            m = m.replacing(with: v, where: v .> m)
            nan .|= v .!= v
            i += 16
        }
        if i < n {
            let v = L.loadPartial(p + i, n - i, fill: -.infinity)
            m = m.replacing(with: v, where: v .> m)
            nan .|= v .!= v
        }
        return any(nan) ? .nan : m.max()
    }

    /// dst = exp(src − shift); returns the sum of dst. src and dst may alias.
    @inline(__always)
    static func expShifted(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ shift: Float) -> Float {
        let s = SIMD16<Float>(repeating: shift)
        var sum = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let e = VectorMath.exp(L.load(src + i) - s)
            L.store(e, dst + i)
            sum += e
            i += 16
        }
        if i < n {
            let e = VectorMath.exp(L.loadPartial(src + i, n - i, fill: -.infinity) - s)
            L.storePartial(e, dst + i, n - i)
            sum += e
        }
        return sum.sum()
    }

    @inline(__always)
    static func scale(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ factor: Float) {
        let f = SIMD16<Float>(repeating: factor)
        var i = 0
        while i + 16 <= n { L.store(L.load(p + i) * f, p + i); i += 16 }
        while i < n { p[i] *= factor; i += 1 }
    }

    /// One softmax row, in place or not.
    @inline(__always)
    static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = rowMax(src, n)
        let sum = expShifted(src, dst, n, m)
        scale(dst, n, 1 / sum)
    }

    @inline(__always)
    static func logSoftmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = rowMax(src, n)
        let sum = expShifted(src, dst, n, m)
        let shift = SIMD16<Float>(repeating: m + Float.log(sum))
        var i = 0
        while i + 16 <= n { L.store(L.load(src + i) - shift, dst + i); i += 16 }
        while i < n { dst[i] = src[i] - shift[0]; i += 1 }
    }

    /// `softmaxRow` in place on `count` rows of `length` (row r at `rows + r · stride`), through the
    /// C kernel compiled per ISA (bit-identical to the Swift row; 16 lanes per instruction on
    /// AVX-512 where this module's loops are built for baseline SSE).
    static func softmaxRowsInPlace(_ rows: UnsafeMutablePointer<Float>, count: Int, length: Int, stride: Int,
                                   isa: KernelISA = .current) {
        _ = chatter_softmax_rows_isa(isa.c, rows, count, length, stride)
    }

    /// Applies `row` to every row of the last axis of `x`, writing a new tensor.
    static func rows(_ x: Tensor, axis: Int, _ row: @escaping (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let a = x.axis(axis)
        if a != x.rank - 1 {
            // Move the axis last, work on contiguous rows, move it back.
            return rows(x.transposed(a, -1).contiguousF32(), axis: -1, row).transposed(a, -1).contiguous()
        }
        let input = x.contiguousF32()
        let result = Tensor(zeros: input.shape)
        let n = input.shape.last ?? 1
        guard n > 0 else { return result }
        let count = input.count / n
        input.withUnsafeFloats { src in
            result.withUnsafeMutableFloats { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                let body: (Range<Int>) -> Void = { range in
                    for r in range { row(s + r * n, d + r * n, n) }
                }
                if input.count < 2 * PointwiseLoop.parallelGrain { body(0..<count) } else {
                    ThreadPool.shared.parallelFor(count, minimumChunk: max(1, PointwiseLoop.parallelGrain / n), body)
                }
            }
        }
        return result
    }
}

/// exp(x − max) / Σ exp(x − max) along `axis` (`F.softmax`).
public func softmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    SoftmaxKernel.rows(x, axis: axis) { SoftmaxKernel.softmaxRow($0, $1, $2) }
}

/// x − max − log Σ exp(x − max) along `axis` (`F.log_softmax`).
public func logSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    SoftmaxKernel.rows(x, axis: axis) { SoftmaxKernel.logSoftmaxRow($0, $1, $2) }
}

/// Softmax over the last axis of a contiguous writable f32 tensor, in place.
public func softmaxInPlace(_ x: Tensor) {
    let n = x.shape.last ?? 1
    guard n > 0 else { return }
    x.withUnsafeMutableFloats { buffer in
        let p = buffer.baseAddress!
        let count = buffer.count / n
        let body: (Range<Int>) -> Void = { range in
            for r in range { SoftmaxKernel.softmaxRow(p + r * n, p + r * n, n) }
        }
        if buffer.count < 2 * PointwiseLoop.parallelGrain { body(0..<count) } else {
            ThreadPool.shared.parallelFor(count, minimumChunk: max(1, PointwiseLoop.parallelGrain / n), body)
        }
    }
}
