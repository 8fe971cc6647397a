import CChatterKernels
/// An n-dimensional array: shape, strides (in elements), dtype and a byte offset into shared storage.
///
/// Like `torch.Tensor`, a `Tensor` is a *view*: copies of the struct share their elements, and
/// `reshaped`, `transposed` and `slice` make new views without copying. Writes go through
/// `withUnsafeMutable…` and are visible to every view of the same storage; use `copy()` for an
/// independent tensor. Memory-mapped tensors are read-only.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let strides: [Int]
    public let dtype: DType
    public let storage: TensorStorage
    /// Offset of element 0 from `storage.baseAddress`, in bytes.
    public let byteOffset: Int

    // MARK: Construction

    /// Wraps existing storage. `strides` default to row-major.
    public init(shape: [Int], dtype: DType, storage: TensorStorage, byteOffset: Int = 0, strides: [Int]? = nil) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.strides = strides ?? Tensor.rowMajorStrides(shape)
        self.dtype = dtype
        self.storage = storage
        self.byteOffset = byteOffset
    }

    /// A zero-filled tensor on the heap.
    public init(zeros shape: [Int], dtype: DType = .f32) {
        let count = shape.reduce(1, *)
        guard let bytes = dtype.byteCount(elements: count) else {
            preconditionFailure("\(count) elements do not fill whole \(dtype) blocks")
        }
        self.init(shape: shape, dtype: dtype, storage: TensorStorage(byteCount: bytes))
    }

    /// An f32 tensor holding `scalars` in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.init(zeros: shape, dtype: .f32)
        storage.baseAddress.copyMemory(from: scalars, byteCount: scalars.count * 4)
    }

    /// A tensor of any fixed-size element type, from row-major values whose memory layout is `dtype`'s.
    public init<T: BitwiseCopyable>(shape: [Int], dtype: DType, values: [T]) {
        precondition(MemoryLayout<T>.stride == dtype.elementBytes, "\(T.self) is not laid out as \(dtype)")
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(zeros: shape, dtype: dtype)
        values.withUnsafeBytes { storage.baseAddress.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// A scalar-filled f32 tensor.
    public init(repeating value: Float, shape: [Int]) {
        self.init(zeros: shape, dtype: .f32)
        let count = self.count
        storage.baseAddress.bindMemory(to: Float.self, capacity: count).update(repeating: value, count: count)
    }

    // MARK: Geometry

    public var rank: Int { shape.count }
    public var count: Int { shape.reduce(1, *) }

    public static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= max(shape[axis], 1)
        }
        return strides
    }

    /// True when elements are laid out row-major with no gaps (size-1 axes may have any stride; a
    /// tensor with no elements has no layout to disagree with and is always contiguous).
    public var isContiguous: Bool {
        if shape.contains(0) { return true }
        var expected = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) where shape[axis] != 1 {
            if strides[axis] != expected { return false }
            expected *= shape[axis]
        }
        return true
    }

    /// Bytes of element data this view covers when contiguous.
    public var byteCount: Int { dtype.byteCount(elements: count) ?? 0 }

    /// Normalises a possibly negative axis.
    public func axis(_ axis: Int) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(resolved >= 0 && resolved < rank, "axis \(axis) out of range for rank \(rank)")
        return resolved
    }

    // MARK: Views

    /// The same elements with another shape (one dimension may be -1). Contiguous tensors give a
    /// view; others are copied first.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[inferred] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let source = isContiguous ? self : contiguous()
        return Tensor(shape: resolved, dtype: dtype, storage: source.storage, byteOffset: source.byteOffset)
    }

    /// Swaps two axes without copying.
    public func transposed(_ first: Int = -2, _ second: Int = -1) -> Tensor {
        let a = axis(first), b = axis(second)
        var newShape = shape, newStrides = strides
        newShape.swapAt(a, b)
        newStrides.swapAt(a, b)
        return Tensor(shape: newShape, dtype: dtype, storage: storage, byteOffset: byteOffset, strides: newStrides)
    }

    /// Reorders axes without copying (`torch.permute`).
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "\(order) is not a permutation of 0..<\(rank)")
        return Tensor(shape: order.map { shape[$0] }, dtype: dtype, storage: storage,
                      byteOffset: byteOffset, strides: order.map { strides[$0] })
    }

    /// Elements `range` along `axis`, without copying.
    public func slice(_ axis: Int, _ range: Range<Int>) -> Tensor {
        let a = self.axis(axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice \(range) outside 0..<\(shape[a])")
        var newShape = shape
        newShape[a] = range.count
        guard let elementBytes = dtype.elementBytes else {
            // Whole rows of blocks of a contiguous tensor, along its outermost non-unit axis: the view
            // starts at a block boundary and stays contiguous, which is all the q8_0 kernels need.
            precondition(a < rank - 1 && isContiguous && shape[..<a].allSatisfy { $0 == 1 }
                            && shape[rank - 1] % dtype.blockElements == 0,
                         "a block-quantised \(dtype) tensor can only be sliced along its outermost axis, whole rows of a contiguous tensor")
            return Tensor(shape: newShape, dtype: dtype, storage: storage,
                          byteOffset: byteOffset + range.lowerBound * strides[a] / dtype.blockElements * dtype.blockBytes,
                          strides: strides)
        }
        return Tensor(shape: newShape, dtype: dtype, storage: storage,
                      byteOffset: byteOffset + range.lowerBound * strides[a] * elementBytes, strides: strides)
    }

    /// Inserts a size-1 axis.
    public func unsqueezed(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        var newShape = shape, newStrides = strides
        newShape.insert(1, at: a)
        newStrides.insert(a < rank ? strides[a] * shape[a] : 1, at: a)
        return Tensor(shape: newShape, dtype: dtype, storage: storage, byteOffset: byteOffset, strides: newStrides)
    }

    // MARK: Copies and conversion

    /// A row-major copy (or `self` when already contiguous).
    public func contiguous() -> Tensor { isContiguous ? self : copy() }

    /// An independent row-major copy on the heap.
    public func copy() -> Tensor {
        let result = Tensor(zeros: shape, dtype: dtype)
        guard let elementBytes = dtype.elementBytes else {
            result.storage.baseAddress.copyMemory(from: storage.baseAddress + byteOffset, byteCount: byteCount)
            return result
        }
        let source = storage.baseAddress + byteOffset
        let destination = result.storage.baseAddress
        var linear = 0
        forEachOffset { offset in
            (destination + linear * elementBytes).copyMemory(from: source + offset * elementBytes, byteCount: elementBytes)
            linear += 1
        }
        return result
    }

    /// Calls `body` with the element offset (in elements, from element 0) of every element in
    /// row-major order.
    @inline(__always)
    func forEachOffset(_ body: (Int) -> Void) {
        let n = count
        guard n > 0 else { return }
        if rank == 0 { body(0); return }
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        for _ in 0..<n {
            body(offset)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < shape[axis] { break }
                offset -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Elements as f32 in row-major order, converting from any floating or integer dtype.
    public func scalars() -> [Float] {
        let base = storage.baseAddress + byteOffset
        var result = [Float]()
        result.reserveCapacity(count)
        switch dtype {
        case .f32: forEachOffset { result.append(base.load(fromByteOffset: $0 * 4, as: Float.self)) }
        case .f64: forEachOffset { result.append(Float(base.load(fromByteOffset: $0 * 8, as: Double.self))) }
        case .f16: forEachOffset { result.append(Float(base.load(fromByteOffset: $0 * 2, as: Float16.self))) }
        case .bf16: forEachOffset { result.append(BFloat16(bitPattern: base.load(fromByteOffset: $0 * 2, as: UInt16.self)).floatValue) }
        case .i64: forEachOffset { result.append(Float(base.load(fromByteOffset: $0 * 8, as: Int64.self))) }
        case .i32: forEachOffset { result.append(Float(base.load(fromByteOffset: $0 * 4, as: Int32.self))) }
        case .i16: forEachOffset { result.append(Float(base.load(fromByteOffset: $0 * 2, as: Int16.self))) }
        case .i8: forEachOffset { result.append(Float(base.load(fromByteOffset: $0, as: Int8.self))) }
        case .u8, .bool: forEachOffset { result.append(Float(base.load(fromByteOffset: $0, as: UInt8.self))) }
        case .q8_0: result = Quantization.dequantizeQ8_0(self)
        }
        return result
    }

    /// Elements as Int64 in row-major order (integer dtypes only).
    public func integers() -> [Int64] {
        let base = storage.baseAddress + byteOffset
        var result = [Int64]()
        result.reserveCapacity(count)
        switch dtype {
        case .i64: forEachOffset { result.append(base.load(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .i32: forEachOffset { result.append(Int64(base.load(fromByteOffset: $0 * 4, as: Int32.self))) }
        case .i16: forEachOffset { result.append(Int64(base.load(fromByteOffset: $0 * 2, as: Int16.self))) }
        case .i8: forEachOffset { result.append(Int64(base.load(fromByteOffset: $0, as: Int8.self))) }
        case .u8, .bool: forEachOffset { result.append(Int64(base.load(fromByteOffset: $0, as: UInt8.self))) }
        default: preconditionFailure("integers() on a \(dtype) tensor")
        }
        return result
    }

    /// A heap copy in another dtype (floating types; rounding to nearest even).
    public func converted(to target: DType) -> Tensor {
        if target == dtype { return contiguous() }
        if target == .bf16 && dtype == .f32 && isContiguous { return narrowedToBF16() }
        let values = scalars()
        switch target {
        case .f32: return Tensor(shape: shape, scalars: values)
        case .f16: return Tensor(shape: shape, dtype: .f16, values: values.map { Float16($0) })
        case .bf16: return Tensor(shape: shape, dtype: .bf16, values: values.map { BFloat16($0).bitPattern })
        case .f64: return Tensor(shape: shape, dtype: .f64, values: values.map { Double($0) })
        case .q8_0: return Quantization.quantizeQ8_0(shape: shape, values: values)
        default: preconditionFailure("conversion to \(target) is not supported")
        }
    }

    /// `converted(to: .bf16)` of a contiguous f32 tensor through the vectorised narrowing of
    /// `kv_cache.c` (the same bits as `BFloat16.init`, which its tests check), in slices across the
    /// pool: S3Gen's bf16 compute converts ~100 M weights at load, which the element-by-element path
    /// (an array of every value, then a map) took ~0.5 s to do.
    private func narrowedToBF16() -> Tensor {
        let result = Tensor(zeros: shape, dtype: .bf16)
        let total = count
        guard total > 0 else { return result }
        withUnsafeFloats { source in
            let sa = UInt(bitPattern: source.baseAddress!)
            let da = UInt(bitPattern: result.storage.baseAddress + result.byteOffset)
            let slice = 1 << 18
            let narrow = { (slices: Range<Int>) in
                let start = slices.lowerBound * slice, end = min(total, slices.upperBound * slice)
                _ = chatter_kv_narrow_isa(KernelISA.current.c, CHATTER_KV_BF16, UnsafePointer<Float>(bitPattern: sa)! + start,
                                          UnsafeMutablePointer<UInt16>(bitPattern: da)! + start, end - start)
            }
            let slices = (total + slice - 1) / slice
            if slices == 1 { narrow(0..<1) } else { ThreadPool.shared.parallelFor(slices, minimumChunk: 1, narrow) }
        }
        return result
    }

    // MARK: Raw access

    /// The f32 elements of a contiguous f32 tensor.
    @inlinable
    public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(dtype == .f32 && isContiguous, "withUnsafeFloats needs a contiguous f32 tensor (have \(dtype), strides \(strides))")
        let pointer = (storage.baseAddress + byteOffset).assumingMemoryBound(to: Float.self)
        return try body(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// The f32 elements of a contiguous, writable f32 tensor.
    @inlinable
    public func withUnsafeMutableFloats<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(dtype == .f32 && isContiguous, "withUnsafeMutableFloats needs a contiguous f32 tensor (have \(dtype), strides \(strides))")
        precondition(storage.isWritable, "tensor is memory-mapped and read-only; copy() it first")
        let pointer = (storage.baseAddress + byteOffset).assumingMemoryBound(to: Float.self)
        return try body(UnsafeMutableBufferPointer(start: pointer, count: count))
    }

    /// The raw bytes of a contiguous tensor.
    public func withUnsafeRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(isContiguous, "withUnsafeRawBytes needs a contiguous tensor")
        return try body(UnsafeRawBufferPointer(start: storage.baseAddress + byteOffset, count: byteCount))
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(dtype), shape: \(shape))" }
}
