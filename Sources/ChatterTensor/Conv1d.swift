import CChatterKernels
import COpenBLAS

/// How `conv1d` extends the input at both ends.
public enum Conv1dPadding: Sendable {
    /// `padding` zeros on both sides (torch's default `padding_mode="zeros"`).
    case zeros
    /// `padding` mirrored samples on both sides, edge not repeated (`padding_mode="reflect"`).
    case reflect
    /// `padding` copies of the edge sample on both sides (`padding_mode="replicate"`).
    case replicate
    /// (K−1)·dilation zeros on the left only, so output t sees inputs ≤ t (CausalConv1d); `padding`
    /// must be 0.
    case causal
}

/// Upper bound, in floats, of the im2col buffer; longer inputs are processed in time tiles so the
/// buffer stays cache- and memory-friendly whatever the sequence length.
private let im2colBudget = 1 << 20

/// A 1-D convolution (cross-correlation), matching `torch.nn.functional.conv1d` after the padding
/// `paddingMode` describes.
///
/// - Parameters:
///   - x: `[B, Cin, T]`.
///   - weight: `[Cout, Cin / groups, K]`.
///   - bias: `[Cout]`.
/// - Returns: `[B, Cout, Tout]`, Tout = ⌊(T + padding_total − dilation·(K−1) − 1) / stride⌋ + 1.
///
/// Grouped convolutions with one input channel per group (depthwise) run as direct loops; the rest
/// unfold the input (im2col) and multiply with one GEMM per batch row, group and time tile.
///
/// A bf16 `weight` (S3Gen's bf16 compute, `S3GenPrecision`) runs the native bf16 GEMM on CPUs with
/// avx512_bf16 (`conv1dBF16`: input rounded to bf16, f32 sums); elsewhere, or with `isa` lowered (as
/// tests do), it is widened to f32, exactly, and takes the f32 path.
public func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1, paddingMode: Conv1dPadding = .zeros,
                   isa: KernelISA = .current, packed: PackedConvWeightBF16? = nil) -> Tensor {
    precondition(x.rank == 3, "conv1d expects input [B, Cin, T], got \(x.shape)")
    precondition(weight.rank == 3, "conv1d expects weight [Cout, Cin/groups, K], got \(weight.shape)")
    let (batch, inChannels, length) = (x.shape[0], x.shape[1], x.shape[2])
    let (outChannels, groupInChannels, kernel) = (weight.shape[0], weight.shape[1], weight.shape[2])
    precondition(stride >= 1 && dilation >= 1 && padding >= 0 && groups >= 1 && kernel >= 1,
                 "conv1d: stride \(stride), dilation \(dilation), padding \(padding), groups \(groups), kernel \(kernel) out of range")
    precondition(inChannels % groups == 0 && outChannels % groups == 0,
                 "conv1d: \(inChannels) input and \(outChannels) output channels must both divide into \(groups) groups")
    precondition(groupInChannels == inChannels / groups,
                 "conv1d: weight \(weight.shape) has \(groupInChannels) input channels per group, input has \(inChannels)/\(groups)")
    if let bias { precondition(bias.shape == [outChannels], "conv1d: bias \(bias.shape) must be [\(outChannels)]") }

    let left: Int, right: Int
    switch paddingMode {
    case .causal:
        precondition(padding == 0, "conv1d: causal padding is (K−1)·dilation on the left; pass padding 0, not \(padding)")
        (left, right) = ((kernel - 1) * dilation, 0)
    case .reflect:
        precondition(padding < length, "conv1d: reflect padding \(padding) needs more than \(padding) samples, got \(length)")
        (left, right) = (padding, padding)
    case .replicate:
        precondition(padding == 0 || length >= 1, "conv1d: replicate padding of an empty input")
        (left, right) = (padding, padding)
    case .zeros:
        (left, right) = (padding, padding)
    }
    let paddedLength = length + left + right
    let span = dilation * (kernel - 1) + 1
    precondition(paddedLength >= span, "conv1d: input of \(length) samples (\(paddedLength) padded) is shorter than the kernel span \(span)")
    let outLength = (paddedLength - span) / stride + 1

    let native = weight.dtype == .bf16 && groups == 1 && groupInChannels > 1 && isa >= .avx512bf16
        && KernelISA.current >= .avx512bf16
    if weight.dtype != .f32 && !native {
        return conv1d(x, weight: weight.converted(to: .f32), bias: bias, stride: stride, padding: padding, dilation: dilation,
                      groups: groups, paddingMode: paddingMode)
    }
    let padded = padTime(x.contiguous(), left: left, right: right, mode: paddingMode)
    if native {
        let pack = packed.flatMap { $0.matches(weight) ? $0 : nil } ?? PackedConvWeightBF16(packing: weight.contiguous())
        return conv1dBF16(padded, weight: pack, bias: bias?.scalars(), stride: stride, dilation: dilation, outLength: outLength)
    }
    let output = Tensor(zeros: [batch, outChannels, outLength])
    let w = weight.contiguous()
    let biasValues = bias?.scalars()
    let groupOutChannels = outChannels / groups

    padded.withUnsafeFloats { xBuffer in
    w.withUnsafeFloats { wBuffer in
    output.withUnsafeMutableFloats { outBuffer in
        let xp = xBuffer.baseAddress!, wp = wBuffer.baseAddress!, out = outBuffer.baseAddress!
        if let biasValues {
            for row in 0..<(batch * outChannels) {
                (out + row * outLength).update(repeating: biasValues[row % outChannels], count: outLength)
            }
        }
        if groupInChannels == 1 {
            // Depthwise: each output row reads one input row; a GEMM of inner size K would waste the BLAS.
            ThreadPool.shared.parallelFor(batch * outChannels, minimumChunk: max(1, 32_768 / max(1, outLength * kernel))) { rows in
                for row in rows {
                    let b = row / outChannels, o = row % outChannels
                    let source = xp + (b * inChannels + o / groupOutChannels) * paddedLength
                    let destination = out + row * outLength
                    for k in 0..<kernel {
                        let tap = wp[o * kernel + k]
                        let start = source + k * dilation
                        if stride == 1 {
                            for t in 0..<outLength { destination[t] += tap * start[t] }
                        } else {
                            for t in 0..<outLength { destination[t] += tap * start[t * stride] }
                        }
                    }
                }
            }
            return
        }
        let rows = groupInChannels * kernel
        let pointwise = kernel == 1 && stride == 1
        let tile = pointwise ? outLength : max(1, min(outLength, im2colBudget / rows))
        let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: rows * tile)
        defer { columns?.deallocate() }
        for b in 0..<batch {
            for g in 0..<groups {
                let groupInput = xp + (b * inChannels + g * groupInChannels) * paddedLength
                let groupWeight = wp + g * groupOutChannels * rows
                let groupOutput = out + (b * outChannels + g * groupOutChannels) * outLength
                var t0 = 0
                while t0 < outLength {
                    let width = min(tile, outLength - t0)
                    let matrix: UnsafePointer<Float>, leading: Int
                    if let columns {
                        ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, 16_384 / width)) { range in
                            for r in range {
                                let c = r / kernel, k = r % kernel
                                let source = groupInput + c * paddedLength + t0 * stride + k * dilation
                                let destination = columns + r * width
                                if stride == 1 {
                                    destination.update(from: source, count: width)
                                } else {
                                    for j in 0..<width { destination[j] = source[j * stride] }
                                }
                            }
                        }
                        (matrix, leading) = (UnsafePointer(columns), width)
                    } else {
                        (matrix, leading) = (groupInput, paddedLength)
                    }
                    GEMMThreading.sgemm(transposeA: false, transposeB: false, m: groupOutChannels, n: width, k: rows,
                                        alpha: 1, a: groupWeight, lda: rows, b: matrix, ldb: leading,
                                        beta: biasValues == nil ? 0 : 1, c: groupOutput + t0, ldc: outLength)
                    t0 += width
                }
            }
        }
    }
    }
    }
    return output
}

/// A bf16 convolution weight [Cout, Cin, K] laid out once for the avx512_bf16 GEMM of `conv1dBF16`:
/// reordered tap-major ([Cout, K, Cin'], Cin' = Cin rounded up to even, the pad channel zero) and
/// packed into the GEMM's row strips (`chatter_gemm_bf16_pack_a`). A layer that holds one
/// (`packed:` of `conv1d`) skips that work on every call: it is a scalar pass over every weight plus
/// the packing, ~5 % of a bf16 S3Gen pass in `perf` (the reorder and packing of each conv's weight,
/// per call, 2026-12-08). The values are the weight's own bf16 values, so a call with the pack and
/// one without give the same bits.
public final class PackedConvWeightBF16: @unchecked Sendable {  // immutable after init; the buffer is only read
    public let outChannels: Int, inChannels: Int, kernel: Int
    /// Cin' and K·Cin', the GEMM's depth.
    let channels: Int, depth: Int
    let packed: UnsafeMutableRawPointer

    /// The pack of `weight` (bf16 [Cout, Cin, K] with Cin > 1), or nil where the native bf16 GEMM does
    /// not run (no avx512_bf16, or capped by CHATTERSTREAM_ISA) or the weight is not such a tensor.
    public convenience init?(weight: Tensor) {
        guard weight.dtype == .bf16, weight.rank == 3, weight.shape[1] > 1, KernelISA.current >= .avx512bf16 else { return nil }
        self.init(packing: weight.contiguous())
    }

    init(packing weight: Tensor) {
        (outChannels, inChannels, kernel) = (weight.shape[0], weight.shape[1], weight.shape[2])
        channels = (inChannels + 1) / 2 * 2
        depth = kernel * channels
        let reordered = UnsafeMutablePointer<Float>.allocate(capacity: outChannels * depth)
        defer { reordered.deallocate() }
        reordered.initialize(repeating: 0, count: outChannels * depth)
        let (outChannels, inChannels, kernel, channels, depth) = (outChannels, inChannels, kernel, channels, depth)
        weight.withUnsafeRawBytes { raw in
            let source = raw.bindMemory(to: UInt16.self).baseAddress!
            for o in 0..<outChannels {
                for c in 0..<inChannels {
                    for k in 0..<kernel {
                        reordered[o * depth + k * channels + c] = BFloat16(bitPattern: source[(o * inChannels + c) * kernel + k]).floatValue
                    }
                }
            }
        }
        let mr = Int(CHATTER_GEMM_BF16_MR)
        packed = UnsafeMutableRawPointer.allocate(byteCount: chatter_gemm_bf16_packed_a_bytes(outChannels, depth), alignment: 64)
        let done = chatter_gemm_bf16_pack_a(reordered, depth, outChannels, depth, packed, 0, (outChannels + mr - 1) / mr)
        precondition(done == 1, "packing a bf16 convolution weight needs avx512_bf16")
    }

    deinit { packed.deallocate() }

    /// Whether this is a pack of a weight of `weight`'s shape (a layer's own weight, by construction).
    func matches(_ weight: Tensor) -> Bool {
        weight.dtype == .bf16 && weight.shape == [outChannels, inChannels, kernel]
    }
}

/// `conv1d` with a bf16 weight [Cout, Cin, K] on the avx512_bf16 GEMM (`gemmBF16`), for `padded`
/// [B, Cin, T + padding] (already extended) and no groups.
///
/// The GEMM computes `c = a · wᵀ` with `a` f32 [M, K'] (rounded to bf16 as it is packed) and `w`
/// bf16 [N, K'], and its output is [M, N] row-major. Posed as M = output channels, N = output frames,
/// K' = K taps × Cin, the output is already the convolution's [Cout, T] layout, `a` is the weight
/// (reordered tap-major, [Cout, K, Cin'], and packed once: `PackedConvWeightBF16`) and `w` row t is the
/// unfolded input of frame t. That row is never written: the input is transposed once to bf16
/// [T, Cin'] (`chatter_conv_input_bf16`; Cin' = Cin rounded up to even, so that no bf16 pair
/// straddles two taps, the pad channel zero in input and weight), and row t is K runs of Cin' values
/// at frames t·stride + k·dilation, which the GEMM's weight packing reads in place
/// (`chatter_gemm_bf16_run_segmented`: ldw = stride·Cin', a run per tap, runs dilation·Cin' apart).
/// The output starts as the bias and the GEMM accumulates into it. Measured against the f32 path
/// (im2col + sgemm): `chatter-bench conv` (BENCHMARKS.md, "S3Gen in bf16").
private func conv1dBF16(_ padded: Tensor, weight: PackedConvWeightBF16, bias: [Float]?, stride: Int, dilation: Int, outLength: Int) -> Tensor {
    let (batch, inChannels, paddedLength) = (padded.shape[0], padded.shape[1], padded.shape[2])
    let (outChannels, channels, depth) = (weight.outChannels, weight.channels, weight.depth)
    let output = Tensor(zeros: [batch, outChannels, outLength])
    let pool = ThreadPool.shared
    let input = UnsafeMutablePointer<UInt16>.allocate(capacity: paddedLength * channels)
    defer { input.deallocate() }
    let ia = UInt(bitPattern: input)

    padded.withUnsafeFloats { xBuffer in
    output.withUnsafeMutableFloats { outBuffer in
        let xa = UInt(bitPattern: xBuffer.baseAddress!)
        for b in 0..<batch {
            // [Cin, T] f32 → [T, Cin'] bf16, blocks of 16 frames split across the pool.
            let frameBlocks = (paddedLength + 15) / 16
            pool.parallelFor(frameBlocks, minimumChunk: max(1, 16_384 / max(1, channels * 16))) { blocks in
                let done = chatter_conv_input_bf16(UnsafePointer<Float>(bitPattern: xa)! + b * inChannels * paddedLength, paddedLength,
                                                   inChannels, paddedLength, UnsafeMutablePointer<UInt16>(bitPattern: ia)!, channels,
                                                   blocks.lowerBound * 16, min(paddedLength, blocks.upperBound * 16))
                precondition(done == 1, "bf16 convolution input needs avx512_bf16")
            }
            let out = outBuffer.baseAddress! + b * outChannels * outLength
            if let bias {
                for o in 0..<outChannels { (out + o * outLength).update(repeating: bias[o], count: outLength) }
            }
            gemmBF16(packedA: UnsafeRawPointer(weight.packed), m: outChannels, k: depth, weight: input, ldw: stride * channels, n: outLength,
                     segmentPairs: channels / 2, segmentStride: dilation * channels,
                     bias: nil, c: out, ldc: outLength, accumulate: true)
        }
    }
    }
    withExtendedLifetime(weight) {}
    return output
}

/// `x` [B, C, T] extended along time by `left` / `right` samples as `mode` says (causal pads zeros).
private func padTime(_ x: Tensor, left: Int, right: Int, mode: Conv1dPadding) -> Tensor {
    if left == 0 && right == 0 { return x }
    let rows = x.shape[0] * x.shape[1], length = x.shape[2]
    let paddedLength = length + left + right
    let result = Tensor(zeros: [x.shape[0], x.shape[1], paddedLength])
    x.withUnsafeFloats { source in
        result.withUnsafeMutableFloats { destination in
            let src = source.baseAddress!, dst = destination.baseAddress!
            ThreadPool.shared.parallelFor(rows, minimumChunk: max(1, 65_536 / paddedLength)) { range in
                for row in range {
                    let input = src + row * length, output = dst + row * paddedLength
                    (output + left).update(from: input, count: length)
                    switch mode {
                    case .zeros, .causal:
                        break
                    case .reflect:
                        for i in 0..<left { output[left - 1 - i] = input[i + 1] }
                        for i in 0..<right { output[left + length + i] = input[length - 2 - i] }
                    case .replicate:
                        for i in 0..<left { output[i] = input[0] }
                        for i in 0..<right { output[left + length + i] = input[length - 1] }
                    }
                }
            }
        }
    }
    return result
}
