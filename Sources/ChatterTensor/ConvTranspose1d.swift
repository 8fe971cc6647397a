
/// A transposed 1-D convolution, matching `torch.nn.functional.conv_transpose1d`:
/// out[b, o, i·stride − padding + k·dilation] += Σ_c x[b, c, i]·weight[c, o, k].
///
/// - Parameters:
///   - x: `[B, Cin, T]`.
///   - weight: `[Cin, Cout / groups, K]` (torch's layout for transposed convolutions).
///   - bias: `[Cout]`.
///   - outputPadding: extra samples at the right end (must be < stride or < dilation, as in torch).
/// - Returns: `[B, Cout, (T−1)·stride − 2·padding + dilation·(K−1) + outputPadding + 1]`.
///
/// Each group is one GEMM, weightᵀ·x → columns [Cout/groups·K, T], followed by col2im, which
/// scatters every column entry to its output sample; output channels are independent so col2im runs
/// in parallel over them without write races.
public func convTranspose1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                            outputPadding: Int = 0, dilation: Int = 1, groups: Int = 1) -> Tensor {
    precondition(x.rank == 3, "convTranspose1d expects input [B, Cin, T], got \(x.shape)")
    precondition(weight.rank == 3, "convTranspose1d expects weight [Cin, Cout/groups, K], got \(weight.shape)")
    let (batch, inChannels, length) = (x.shape[0], x.shape[1], x.shape[2])
    let (weightInChannels, groupOutChannels, kernel) = (weight.shape[0], weight.shape[1], weight.shape[2])
    precondition(stride >= 1 && dilation >= 1 && padding >= 0 && outputPadding >= 0 && groups >= 1 && kernel >= 1,
                 "convTranspose1d: stride \(stride), dilation \(dilation), padding \(padding), output padding \(outputPadding), groups \(groups) out of range")
    precondition(weightInChannels == inChannels, "convTranspose1d: weight \(weight.shape) is for \(weightInChannels) input channels, input has \(inChannels)")
    precondition(inChannels % groups == 0, "convTranspose1d: \(inChannels) input channels do not divide into \(groups) groups")
    precondition(outputPadding < stride || outputPadding < dilation,
                 "convTranspose1d: output padding \(outputPadding) must be smaller than stride \(stride) or dilation \(dilation)")
    let outChannels = groupOutChannels * groups
    if let bias { precondition(bias.shape == [outChannels], "convTranspose1d: bias \(bias.shape) must be [\(outChannels)]") }
    let outLength = (length - 1) * stride - 2 * padding + dilation * (kernel - 1) + outputPadding + 1
    precondition(outLength >= 1, "convTranspose1d: output length \(outLength) is not positive")

    let groupInChannels = inChannels / groups
    let rows = groupOutChannels * kernel
    let output = Tensor(zeros: [batch, outChannels, outLength])
    let input = x.contiguous(), w = weight.contiguous()
    let biasValues = bias?.scalars()
    // Time tiles bound the column buffer for long inputs (HiFT's last upsampler sees 40 frames per mel frame).
    let tile = max(1, min(length, (1 << 21) / max(1, rows)))
    let columns = UnsafeMutablePointer<Float>.allocate(capacity: rows * tile)
    defer { columns.deallocate() }

    input.withUnsafeFloats { xBuffer in
    w.withUnsafeFloats { wBuffer in
    output.withUnsafeMutableFloats { outBuffer in
        let xp = xBuffer.baseAddress!, wp = wBuffer.baseAddress!, out = outBuffer.baseAddress!
        if let biasValues {
            for row in 0..<(batch * outChannels) {
                (out + row * outLength).update(repeating: biasValues[row % outChannels], count: outLength)
            }
        }
        for b in 0..<batch {
            for g in 0..<groups {
                let groupInput = xp + (b * inChannels + g * groupInChannels) * length
                let groupWeight = wp + g * groupInChannels * rows
                let groupOutput = out + (b * outChannels + g * groupOutChannels) * outLength
                var t0 = 0
                while t0 < length {
                    let width = min(tile, length - t0)
                    GEMMThreading.sgemm(transposeA: true, transposeB: false, m: rows, n: width, k: groupInChannels,
                                        alpha: 1, a: groupWeight, lda: rows, b: groupInput + t0, ldb: length,
                                        beta: 0, c: columns, ldc: width)
                    let tileStart = t0
                    ThreadPool.shared.parallelFor(groupOutChannels, minimumChunk: max(1, 16_384 / max(1, kernel * width))) { channels in
                        for o in channels {
                            let destination = groupOutput + o * outLength
                            for k in 0..<kernel {
                                let source = columns + (o * kernel + k) * width
                                let offset = tileStart * stride - padding + k * dilation
                                // Positions offset + j·stride for j in 0..<width, clipped to the output.
                                let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
                                let limit = outLength - offset
                                let last = limit <= 0 ? -1 : min(width - 1, (limit - 1) / stride)
                                if first > last { continue }
                                for j in first...last { destination[offset + j * stride] += source[j] }
                            }
                        }
                    }
                    t0 += width
                }
            }
        }
    }
    }
    }
    return output
}
