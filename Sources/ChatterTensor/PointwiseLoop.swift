/// A function applied lane by lane to 16 floats. Kernels are structs (not closures) so that the
/// generic loops below are specialised per kernel and the vector body inlines.
protocol VectorUnary {
    func callAsFunction(_ x: SIMD16<Float>) -> SIMD16<Float>
}

/// The loops shared by the elementwise ops: contiguous f32 in, contiguous f32 out, 16 lanes at a time,
/// the tail padded into one more vector so each kernel is written once.
enum PointwiseLoop {
    /// Below this many elements a loop stays on the calling thread (a pool hand-off costs a few µs).
    static let parallelGrain = 1 << 14

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = 0) -> SIMD16<Float> {
        var v = SIMD16<Float>(repeating: fill)
        for j in 0..<n { v[j] = p[j] }
        return v
    }

    @inline(__always)
    static func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        for j in 0..<n { p[j] = v[j] }
    }

    /// dst[i] = kernel(src[i]) for i < n; src and dst may be the same buffer.
    @inline(__always)
    static func map<K: VectorUnary>(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ kernel: K) {
        var i = 0
        while i + 16 <= n {
            store(kernel(load(src + i)), dst + i)
            i += 16
        }
        if i < n { storePartial(kernel(loadPartial(src + i, n - i)), dst + i, n - i) }
    }

    /// Runs `body` over `0..<count` split into 16-aligned chunks, in parallel when worth it.
    static func chunked(_ count: Int, grain: Int = parallelGrain, _ body: @escaping (Range<Int>) -> Void) {
        if count < 2 * grain { body(0..<count); return }
        let blocks = (count + 15) / 16
        ThreadPool.shared.parallelFor(blocks, minimumChunk: grain / 16) { range in
            body(range.lowerBound * 16..<min(count, range.upperBound * 16))
        }
    }

    /// A new tensor holding kernel(x).
    static func apply<K: VectorUnary>(_ x: Tensor, _ kernel: K) -> Tensor {
        let input = x.contiguousF32()
        let result = Tensor(zeros: input.shape)
        input.withUnsafeFloats { src in
            result.withUnsafeMutableFloats { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                chunked(src.count) { range in
                    map(s + range.lowerBound, d + range.lowerBound, range.count, kernel)
                }
            }
        }
        return result
    }

    /// x ← kernel(x), for a contiguous writable f32 tensor.
    static func applyInPlace<K: VectorUnary>(_ x: Tensor, _ kernel: K) {
        x.withUnsafeMutableFloats { buffer in
            let p = buffer.baseAddress!
            chunked(buffer.count) { range in
                map(p + range.lowerBound, p + range.lowerBound, range.count, kernel)
            }
        }
    }
}

extension Tensor {
    /// `self` as a contiguous f32 tensor (a view when it already is one, else a converted copy).
    func contiguousF32() -> Tensor {
        if dtype == .f32 { return contiguous() }
        return converted(to: .f32)
    }
}
