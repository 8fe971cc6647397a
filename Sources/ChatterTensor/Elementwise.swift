/// Elementwise arithmetic with NumPy broadcasting, on f32 tensors (other dtypes are converted).

/// A binary operation, lane-wise on vectors and on scalars.
protocol VectorBinary {
    static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
}

enum AddOp: VectorBinary { @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a + b } }
enum SubOp: VectorBinary { @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a - b } }
enum MulOp: VectorBinary { @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a * b } }
enum DivOp: VectorBinary { @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a / b } }
enum MaxOp: VectorBinary {
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        // torch.maximum propagates NaN; pointwiseMax would drop it.
        a.replacing(with: b, where: a .< b).replacing(with: b, where: b .!= b)
    }
}
enum MinOp: VectorBinary {
    @inline(__always) static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        a.replacing(with: b, where: a .> b).replacing(with: b, where: b .!= b)
    }
}

/// The shape two shapes broadcast to, NumPy rules (align trailing axes; sizes equal or 1).
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let x = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let y = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(x == y || x == 1 || y == 1, "shapes \(a) and \(b) do not broadcast (axis \(i): \(x) vs \(y))")
        result[i] = x == 1 ? y : x
    }
    return result
}

/// Element strides that read a row-major tensor of `shape` as if it had `target` shape (0 on
/// broadcast axes).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = Tensor.rowMajorStrides(shape)
    let pad = target.count - shape.count
    return (0..<target.count).map { i in
        i < pad || shape[i - pad] == 1 ? 0 : own[i - pad]
    }
}

/// A broadcast loop reduced to its simplest form: an outer index space (with per-operand strides) and
/// one inner run of `inner` elements in which each operand either advances by 1 or stays put.
/// Adjacent axes are merged where both operands allow it, so that the common cases (same shape,
/// bias over the last axis, per-channel scale on [B, C, T]) become long contiguous inner runs.
struct BroadcastPlan {
    var outerShape: [Int]
    var outerStridesA: [Int]
    var outerStridesB: [Int]
    var inner: Int
    var innerStrideA: Int
    var innerStrideB: Int

    init(shape: [Int], stridesA: [Int], stridesB: [Int]) {
        var dims: [(size: Int, a: Int, b: Int)] = []
        for i in 0..<shape.count where shape[i] != 1 {
            dims.append((shape[i], stridesA[i], stridesB[i]))
        }
        var merged: [(size: Int, a: Int, b: Int)] = []
        for d in dims {
            if let last = merged.last, last.a == d.a * d.size, last.b == d.b * d.size {
                merged[merged.count - 1] = (last.size * d.size, d.a, d.b)
            } else {
                merged.append(d)
            }
        }
        if let last = merged.last, (last.a == 0 || last.a == 1), (last.b == 0 || last.b == 1) {
            inner = last.size; innerStrideA = last.a; innerStrideB = last.b
            merged.removeLast()
        } else {
            inner = 1; innerStrideA = 0; innerStrideB = 0
        }
        outerShape = merged.map(\.size)
        outerStridesA = merged.map(\.a)
        outerStridesB = merged.map(\.b)
    }

    var outerCount: Int { outerShape.reduce(1, *) }

    /// Operand offsets of outer index `index`.
    @inline(__always)
    func offsets(_ index: Int) -> (Int, Int) {
        var rest = index, a = 0, b = 0
        for axis in stride(from: outerShape.count - 1, through: 0, by: -1) {
            let i = rest % outerShape[axis]
            rest /= outerShape[axis]
            a += i * outerStridesA[axis]
            b += i * outerStridesB[axis]
        }
        return (a, b)
    }
}

/// One inner run: d[i] = op(a[i·sa], b[i·sb]) with sa, sb ∈ {0, 1}.
@inline(__always)
func binaryRun<Op: VectorBinary>(_ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                                 _ d: UnsafeMutablePointer<Float>, _ n: Int, _: Op.Type) {
    typealias L = PointwiseLoop
    var i = 0
    switch (sa, sb) {
    case (1, 1):
        while i + 16 <= n { L.store(Op.apply(L.load(a + i), L.load(b + i)), d + i); i += 16 }
        if i < n { L.storePartial(Op.apply(L.loadPartial(a + i, n - i), L.loadPartial(b + i, n - i)), d + i, n - i) }
    case (1, _):
        let vb = SIMD16<Float>(repeating: b[0])
        while i + 16 <= n { L.store(Op.apply(L.load(a + i), vb), d + i); i += 16 }
        if i < n { L.storePartial(Op.apply(L.loadPartial(a + i, n - i), vb), d + i, n - i) }
    case (_, 1):
        let va = SIMD16<Float>(repeating: a[0])
        while i + 16 <= n { L.store(Op.apply(va, L.load(b + i)), d + i); i += 16 }
        if i < n { L.storePartial(Op.apply(va, L.loadPartial(b + i, n - i)), d + i, n - i) }
    default:
        let value = Op.apply(SIMD16(repeating: a[0]), SIMD16(repeating: b[0]))[0]
        (d).update(repeating: value, count: n)
    }
}

/// Writes op(a, b) into `out`, whose shape is the broadcast shape; `out` may alias `a` when `a`
/// already has that shape (in-place ops).
func binaryInto<Op: VectorBinary>(_ a: Tensor, _ b: Tensor, _ out: Tensor, _: Op.Type) {
    let shape = out.shape
    let plan = BroadcastPlan(shape: shape, stridesA: broadcastStrides(a.shape, to: shape),
                             stridesB: broadcastStrides(b.shape, to: shape))
    a.withUnsafeFloats { pa in
        b.withUnsafeFloats { pb in
            out.withUnsafeMutableFloats { pd in
                let baseA = pa.baseAddress!, baseB = pb.baseAddress!, baseD = pd.baseAddress!
                let inner = plan.inner, outer = plan.outerCount
                if outer == 1 {
                    // One long run: split it across threads.
                    PointwiseLoop.chunked(inner) { r in
                        binaryRun(baseA + r.lowerBound * plan.innerStrideA, plan.innerStrideA,
                                  baseB + r.lowerBound * plan.innerStrideB, plan.innerStrideB,
                                  baseD + r.lowerBound, r.count, Op.self)
                    }
                    return
                }
                let grain = max(1, PointwiseLoop.parallelGrain / max(inner, 1))
                let body: (Range<Int>) -> Void = { rows in
                    for row in rows {
                        let (oa, ob) = plan.offsets(row)
                        binaryRun(baseA + oa, plan.innerStrideA, baseB + ob, plan.innerStrideB,
                                  baseD + row * inner, inner, Op.self)
                    }
                }
                if outer * inner < 2 * PointwiseLoop.parallelGrain { body(0..<outer) } else {
                    ThreadPool.shared.parallelFor(outer, minimumChunk: grain, body)
                }
            }
        }
    }
}

func binary<Op: VectorBinary>(_ a: Tensor, _ b: Tensor, _ op: Op.Type) -> Tensor {
    let x = a.contiguousF32(), y = b.contiguousF32()
    let out = Tensor(zeros: broadcastShape(x.shape, y.shape))
    binaryInto(x, y, out, op)
    return out
}

func binaryInPlace<Op: VectorBinary>(_ target: Tensor, _ other: Tensor, _ op: Op.Type) {
    precondition(broadcastShape(target.shape, other.shape) == target.shape,
                 "in-place op: \(other.shape) does not broadcast to the target's shape \(target.shape)")
    binaryInto(target, other.contiguousF32(), target, op)
}

// MARK: Public API

/// a + b with broadcasting.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, AddOp.self) }
/// a − b with broadcasting.
public func sub(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, SubOp.self) }
/// a · b with broadcasting.
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MulOp.self) }
/// a / b with broadcasting.
public func div(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, DivOp.self) }
/// Elementwise maximum (NaN-propagating, like `torch.maximum`).
public func maximum(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MaxOp.self) }
/// Elementwise minimum (NaN-propagating, like `torch.minimum`).
public func minimum(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MinOp.self) }

public func add(_ a: Tensor, _ s: Float) -> Tensor { binary(a, Tensor(repeating: s, shape: []), AddOp.self) }
public func sub(_ a: Tensor, _ s: Float) -> Tensor { binary(a, Tensor(repeating: s, shape: []), SubOp.self) }
public func mul(_ a: Tensor, _ s: Float) -> Tensor { binary(a, Tensor(repeating: s, shape: []), MulOp.self) }
public func div(_ a: Tensor, _ s: Float) -> Tensor { binary(a, Tensor(repeating: s, shape: []), DivOp.self) }

/// target ← target + other (other broadcast to target's shape). `target` must be contiguous f32 on the heap.
public func addInPlace(_ target: Tensor, _ other: Tensor) { binaryInPlace(target, other, AddOp.self) }
/// target ← target − other.
public func subInPlace(_ target: Tensor, _ other: Tensor) { binaryInPlace(target, other, SubOp.self) }
/// target ← target · other.
public func mulInPlace(_ target: Tensor, _ other: Tensor) { binaryInPlace(target, other, MulOp.self) }
/// target ← target · s.
public func scaleInPlace(_ target: Tensor, by s: Float) {
    binaryInPlace(target, Tensor(repeating: s, shape: []), MulOp.self)
}

/// x · s.
public func scale(_ x: Tensor, by s: Float) -> Tensor { mul(x, s) }

struct ClampKernel: VectorUnary {
    let low: Float, high: Float
    @inline(__always) func callAsFunction(_ x: SIMD16<Float>) -> SIMD16<Float> {
        x.replacing(with: SIMD16(repeating: low), where: x .< low).replacing(with: SIMD16(repeating: high), where: x .> high)
    }
}

/// Values limited to [min, max] (NaN stays NaN, like `torch.clamp`).
public func clamp(_ x: Tensor, min low: Float = -.infinity, max high: Float = .infinity) -> Tensor {
    precondition(!(low > high), "clamp: min \(low) > max \(high)")
    return PointwiseLoop.apply(x, ClampKernel(low: low, high: high))
}

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { sub(a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { mul(a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { div(a, b) }
    public static func + (a: Tensor, s: Float) -> Tensor { add(a, s) }
    public static func - (a: Tensor, s: Float) -> Tensor { sub(a, s) }
    public static func * (a: Tensor, s: Float) -> Tensor { mul(a, s) }
    public static func / (a: Tensor, s: Float) -> Tensor { div(a, s) }
    public static func + (s: Float, a: Tensor) -> Tensor { add(a, s) }
    public static func * (s: Float, a: Tensor) -> Tensor { mul(a, s) }
    public static func - (s: Float, a: Tensor) -> Tensor { binary(Tensor(repeating: s, shape: []), a, SubOp.self) }
    public static func / (s: Float, a: Tensor) -> Tensor { binary(Tensor(repeating: s, shape: []), a, DivOp.self) }
    public static prefix func - (a: Tensor) -> Tensor { mul(a, -1) }
}
