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
public func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1, paddingMode: Conv1dPadding = .zeros) -> Tensor {
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

    let padded = padTime(x.contiguous(), left: left, right: right, mode: paddingMode)
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
