import ChatterTensor

/// A bias-free `Conv2d` (weight [out, in, k, k]) with stride (strideH, 1) and "same" padding
/// (kernel 3 → pad 1, kernel 1 → pad 0): the subset CAMPPlus's front end uses, where the second
/// axis is frequency and the third time.
///
/// It runs as one conv1d over time per output frequency row: the k input rows of each output row
/// are stacked as channels (c·k + i), which matches the weight reshaped to [out, in·k, k]. So the
/// 2-D convolution rides on the conv1d op (and its GEMM) rather than needing an op of its own.
struct Conv2d: Sendable {
    let weight: Tensor  // [out, in·k, k]
    let outChannels: Int, inChannels: Int, kernel: Int, strideH: Int

    /// `<name>.weight` [out, in, kernel, kernel].
    init(_ weights: any WeightStore, _ name: String, out: Int, in inChannels: Int, kernel: Int, strideH: Int = 1) throws {
        weight = try weights.float32(name + ".weight", shape: [out, inChannels, kernel, kernel]).reshaped([out, inChannels * kernel, kernel])
        (outChannels, self.inChannels, self.kernel, self.strideH) = (out, inChannels, kernel, strideH)
    }

    /// `x` [C, H, W] → [out, Hout, W].
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (channels, height, width) = (x.shape[0], x.shape[1], x.shape[2])
        let pad = (kernel - 1) / 2
        let outHeight = (height + 2 * pad - kernel) / strideH + 1
        // Rows outside the image stay zero (the padding); every other row is one contiguous copy.
        let stacked = Tensor(zeros: [outHeight, channels * kernel, width])
        x.contiguous().withUnsafeFloats { source in
            stacked.withUnsafeMutableFloats { target in
                for h in 0..<outHeight {
                    for c in 0..<channels {
                        for i in 0..<kernel {
                            let row = h * strideH + i - pad
                            guard row >= 0 && row < height else { continue }
                            (target.baseAddress! + ((h * channels + c) * kernel + i) * width)
                                .update(from: source.baseAddress! + (c * height + row) * width, count: width)
                        }
                    }
                }
            }
        }
        let y = conv1d(stacked, weight: weight, padding: pad)  // [Hout, out, W]
        return y.permuted([1, 0, 2]).contiguous()
    }
}
