import ChatterTensor

/// An embedding table [rows, D] read row by row in its stored dtype: f32, bf16 and f16 are used in
/// place (a bf16 or f16 row is widened exactly as it is read), anything else is widened to f32 once
/// at load. T3 reads a handful of rows per step, so a bf16 or f16 checkpoint keeps its 200 MB text
/// table mapped instead of copying it to f32 at load (a second, for f16, before this).
struct EmbeddingTable {
    let tensor: Tensor
    let rows: Int
    let width: Int

    init(_ stored: Tensor) {
        precondition(stored.rank == 2, "an embedding table is [rows, D], got \(stored.shape)")
        tensor = [.f32, .bf16, .f16].contains(stored.dtype) ? stored.contiguous() : stored.converted(to: .f32)
        rows = stored.shape[0]
        width = stored.shape[1]
    }

    /// Writes row `row` to `out[0..<width]`, or adds it when `accumulate`.
    func read(row: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        precondition(row >= 0 && row < rows, "embedding row \(row) outside 0..<\(rows)")
        tensor.withUnsafeRawBytes { raw in
            if tensor.dtype == .f32 {
                let p = raw.baseAddress!.assumingMemoryBound(to: Float.self) + row * width
                if accumulate { for j in 0..<width { out[j] += p[j] } } else { out.update(from: p, count: width) }
            } else if tensor.dtype == .f16 {
                let p = raw.baseAddress!.assumingMemoryBound(to: Float16.self) + row * width
                for j in 0..<width {
                    let value = Float(p[j])
                    out[j] = accumulate ? out[j] + value : value
                }
            } else {
                let p = raw.baseAddress!.assumingMemoryBound(to: UInt16.self) + row * width
                for j in 0..<width {
                    let value = Float(bitPattern: UInt32(p[j]) << 16)
                    out[j] = accumulate ? out[j] + value : value
                }
            }
        }
    }
}
