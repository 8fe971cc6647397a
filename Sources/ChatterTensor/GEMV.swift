import CChatterKernels
import Synchronization

/// Activation rows the GEMV kernels hold in registers; more rows cost one weight pass per 8.
let gemvMaxRows = Int(CHATTER_GEMV_MAX_ROWS)

/// The weight dtypes the GEMV kernels read in place.
public let gemvWeightDTypes: Set<DType> = [.f32, .bf16, .f16, .q8_0]

/// `y = x · weightᵀ + bias` for a handful of rows, in PyTorch `linear` layout (`weight` is
/// [out, in], row-major, f32, bf16, f16 or q8_0; `x` is [..., in] f32; the result is [..., out] f32).
///
/// Decode steps are bound by reading weights, so this path reads each weight once for all rows (the
/// two CFG rows share one pass) and splits output columns across `ThreadPool.shared`. Up to 8 rows
/// are held in registers; more rows cost one weight pass per 8 (use `matmul` / `linear` for those).
public func gemv(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    _ = gemvRows(x, weight: weight)
    let output = Tensor(zeros: Array(x.shape.dropLast()) + [weight.shape[0]])
    gemv(x, weight: weight, bias: bias, into: output, isa: nil)
    return output
}

/// As `gemv(_:weight:bias:)`, writing into a preallocated contiguous f32 `output` of shape
/// [..., out] (the decode loop allocates nothing).
public func gemv(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, into output: Tensor) {
    gemv(x, weight: weight, bias: bias, into: output, isa: nil)
}

/// The rows and inner size of `x` for a GEMV against `weight`, checking shapes.
private func gemvRows(_ x: Tensor, weight: Tensor) -> (rows: Int, inFeatures: Int) {
    precondition(weight.rank == 2, "gemv weight must be [out, in], got \(weight.shape)")
    precondition(x.rank >= 1 && x.shape.last == weight.shape[1],
                 "gemv input \(x.shape) does not end in the weight's in-features \(weight.shape[1])")
    precondition(x.dtype == .f32, "gemv input must be f32, got \(x.dtype)")
    return (x.shape.dropLast().reduce(1, *), weight.shape[1])
}

/// The kernel entry with an optional forced instruction set (tests compare every variant).
func gemv(_ x: Tensor, weight: Tensor, bias: Tensor?, into output: Tensor, isa: KernelISA?) {
    let (rows, k) = gemvRows(x, weight: weight)
    let n = weight.shape[0]
    precondition(gemvWeightDTypes.contains(weight.dtype), "gemv weight must be f32, bf16, f16 or q8_0, got \(weight.dtype)")
    precondition(weight.dtype != .q8_0 || k % Quantization.blockElements == 0,
                 "q8_0 gemv needs in-features that are a multiple of 32 (whole blocks per row), got \(k)")
    precondition(output.shape == Array(x.shape.dropLast()) + [n], "gemv output must be \(Array(x.shape.dropLast()) + [n]), got \(output.shape)")
    if let bias {
        precondition(bias.shape == [n] && bias.dtype == .f32, "gemv bias must be f32 [\(n)], got \(bias.dtype) \(bias.shape)")
    }
    guard rows > 0, n > 0 else { return }
    let input = x.contiguous(), weights = weight.contiguous(), biasValues = bias?.contiguous()
    let chosen = (isa ?? KernelISA.current).c
    let rowBytes = weights.dtype.byteCount(elements: k)!
    // Work is handed out in tiles of ~256 KiB of weights that threads claim as they go, rather than
    // one fixed share each: a thread that loses its core for a while (this runs beside other work)
    // then delays the step by one tile, not by half the matrix. Tiles are multiples of 12 columns so
    // the kernels' 2-, 3- and 4-row blocks divide them.
    let tileColumns = max(12, ((256 << 10) / max(1, rowBytes) + 11) / 12 * 12)
    let tiles = (n + tileColumns - 1) / tileColumns

    input.withUnsafeFloats { xBuffer in
        output.withUnsafeMutableFloats { yBuffer in
            let xp = xBuffer.baseAddress!, yp = yBuffer.baseAddress!
            let bp = biasValues?.withUnsafeFloats { $0.baseAddress }
            let wp = UnsafeRawPointer(weights.storage.baseAddress + weights.byteOffset)
            // Pointers cross into the pool's closure as bit patterns: the tensors above outlive the
            // synchronous parallelFor, and raw pointers are not Sendable.
            let (xa, ya, wa, ba) = (UInt(bitPattern: xp), UInt(bitPattern: yp), UInt(bitPattern: wp), UInt(bitPattern: bp))
            let dtype = weights.dtype
            let runTile = { (tile: Int) in
                let begin = tile * tileColumns, end = min(n, begin + tileColumns)
                let x = UnsafePointer<Float>(bitPattern: xa)!, y = UnsafeMutablePointer<Float>(bitPattern: ya)!
                let bias = UnsafePointer<Float>(bitPattern: ba)
                switch dtype {
                case .f32:
                    _ = chatter_gemv_f32_isa(chosen, x, k, rows, k, UnsafePointer<Float>(bitPattern: wa)!, k,
                                             bias, y, n, begin, end)
                case .bf16:
                    _ = chatter_gemv_bf16_isa(chosen, x, k, rows, k, UnsafePointer<UInt16>(bitPattern: wa)!, k,
                                              bias, y, n, begin, end)
                case .f16:
                    _ = chatter_gemv_f16_isa(chosen, x, k, rows, k, UnsafePointer<UInt16>(bitPattern: wa)!, k,
                                             bias, y, n, begin, end)
                default:
                    _ = chatter_gemv_q8_0_isa(chosen, x, k, rows, k, UnsafePointer<UInt8>(bitPattern: wa)!, rowBytes,
                                              bias, y, n, begin, end)
                }
            }
            // Handing work to the pool costs a few µs (a cached 2×128×1024 product took 4.4 µs on one
            // thread, 8 µs on two), about what a second thread saves on 1 MiB of uncached weights:
            // smaller products run on the calling thread.
            let threads = rowBytes * n < (1 << 20) ? 1 : min(ThreadPool.shared.threadCount, tiles)
            if threads <= 1 {
                for tile in 0..<tiles { runTile(tile) }
                return
            }
            let next = TileCounter()
            ThreadPool.shared.parallelFor(threads) { _ in
                while case let tile = next.claim(), tile < tiles { runTile(tile) }
            }
        }
    }
    withExtendedLifetime((input, weights, biasValues)) {}
}

/// The next unclaimed tile of one `gemv` (or bf16 GEMM) call, shared by the threads running it.
final class TileCounter: Sendable {
    private let next = Atomic<Int>(0)
    func claim() -> Int { next.wrappingAdd(1, ordering: .relaxed).oldValue }
}
