/// Tensors joined along `axis` (`torch.cat`). Any unquantised dtype; all inputs must share it and
/// agree on every other axis.
public func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
    precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
    let first = tensors[0]
    let a = first.axis(axis)
    guard let elementBytes = first.dtype.elementBytes else { preconditionFailure("cannot concatenate block-quantised \(first.dtype)") }
    var shape = first.shape
    shape[a] = 0
    for t in tensors {
        precondition(t.dtype == first.dtype, "concatenate: dtype \(t.dtype) differs from \(first.dtype)")
        precondition(t.rank == first.rank, "concatenate: rank of \(t.shape) differs from \(first.shape)")
        for i in 0..<t.rank where i != a {
            precondition(t.shape[i] == first.shape[i], "concatenate along \(a): shape \(t.shape) does not match \(first.shape)")
        }
        shape[a] += t.shape[a]
    }
    let result = Tensor(zeros: shape, dtype: first.dtype)
    let outer = shape[..<a].reduce(1, *)
    let innerBytes = shape[(a + 1)...].reduce(1, *) * elementBytes
    let outRow = shape[a] * innerBytes
    var column = 0
    for t in tensors {
        let source = t.contiguous()
        let rowBytes = t.shape[a] * innerBytes
        if rowBytes > 0 {
            let src = source.storage.baseAddress + source.byteOffset
            let dst = result.storage.baseAddress + column
            for o in 0..<outer {
                (dst + o * outRow).copyMemory(from: src + o * rowBytes, byteCount: rowBytes)
            }
        }
        column += rowBytes
    }
    return result
}
