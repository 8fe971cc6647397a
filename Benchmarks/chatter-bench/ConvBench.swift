import ChatterTensor
import Foundation

/// `conv1d` at S3Gen's shapes, f32 weights (im2col + OpenBLAS sgemm) against bf16 weights (on
/// avx512_bf16 the native bf16 GEMM over the transposed input, `conv1dBF16`), per call: the
/// CFM estimator's causal k = 3 convs, HiFT's conv_pre and its resblock convs at each of the three
/// upsampled rates (6 s of audio: 2400 / 12000 / 36000 frames; kernels 3, 7, 11; dilations 1 and 5)
/// and conv_post. GFLOP/s counts 2 · Cout · Cin · K per output frame.
struct ConvBench {
    let repetitions: Int

    struct Shape {
        let name: String, inChannels: Int, outChannels: Int, frames: Int, kernel: Int, dilation: Int
    }

    static let shapes: [Shape] = [
        Shape(name: "cfm resnet k3", inChannels: 256, outChannels: 256, frames: 800, kernel: 3, dilation: 1),
        Shape(name: "cfm down k3 512→256", inChannels: 512, outChannels: 256, frames: 800, kernel: 3, dilation: 1),
        Shape(name: "hift conv_pre", inChannels: 80, outChannels: 512, frames: 300, kernel: 7, dilation: 1),
        Shape(name: "hift 256ch k3 d1", inChannels: 256, outChannels: 256, frames: 2400, kernel: 3, dilation: 1),
        Shape(name: "hift 256ch k11 d5", inChannels: 256, outChannels: 256, frames: 2400, kernel: 11, dilation: 5),
        Shape(name: "hift 128ch k7 d1", inChannels: 128, outChannels: 128, frames: 12000, kernel: 7, dilation: 1),
        Shape(name: "hift 128ch k7 d5", inChannels: 128, outChannels: 128, frames: 12000, kernel: 7, dilation: 5),
        Shape(name: "hift 64ch k11 d1", inChannels: 64, outChannels: 64, frames: 36000, kernel: 11, dilation: 1),
        Shape(name: "hift 64ch k11 d5", inChannels: 64, outChannels: 64, frames: 36000, kernel: 11, dilation: 5),
        Shape(name: "hift conv_post", inChannels: 64, outChannels: 18, frames: 36000, kernel: 7, dilation: 1),
    ]

    func run() -> [String: Any] {
        let native = KernelISA.current >= .avx512bf16
        var cases: [[String: Any]] = []
        for shape in Self.shapes {
            var rng = SplitMix64(seed: UInt64(shape.inChannels * 31 + shape.kernel))
            let inputCount = shape.inChannels * shape.frames
            let weightCount = shape.outChannels * shape.inChannels * shape.kernel
            let inputs: [Float] = (0..<inputCount).map { _ in Float.random(in: -1..<1, using: &rng) }
            let weights: [Float] = (0..<weightCount).map { _ in Float.random(in: -0.05..<0.05, using: &rng) }
            let x = Tensor(shape: [1, shape.inChannels, shape.frames], scalars: inputs)
            let w32 = Tensor(shape: [shape.outChannels, shape.inChannels, shape.kernel], scalars: weights)
            let w16: Tensor = w32.converted(to: DType.bf16)
            let bias = Tensor(shape: [shape.outChannels], scalars: (0..<shape.outChannels).map { _ in Float.random(in: 0..<1, using: &rng) })
            let padding = shape.dilation * (shape.kernel - 1) / 2
            func measure(_ weight: Tensor) -> Double {
                _ = conv1d(x, weight: weight, bias: bias, padding: padding, dilation: shape.dilation)
                var times: [Double] = []
                for _ in 0..<repetitions {
                    let start = now()
                    _ = conv1d(x, weight: weight, bias: bias, padding: padding, dilation: shape.dilation)
                    times.append(Double(now() - start) / 1e9)
                }
                return median(times)
            }
            let flops: Double = 2 * Double(weightCount * shape.frames)
            let f32 = measure(w32)
            var entry: [String: Any] = ["name": shape.name, "in": shape.inChannels, "out": shape.outChannels, "frames": shape.frames,
                                        "kernel": shape.kernel, "dilation": shape.dilation,
                                        "f32_ms": rounded(f32 * 1e3, 3), "f32_gflop_s": rounded(flops / f32 / 1e9, 1)]
            var line = "conv \(shape.name) (\(shape.inChannels)→\(shape.outChannels), T \(shape.frames)): f32 \(rounded(f32 * 1e3, 2)) ms = \(rounded(flops / f32 / 1e9, 1)) GFLOP/s"
            if native {
                let bf16 = measure(w16)
                entry["bf16_ms"] = rounded(bf16 * 1e3, 3)
                entry["bf16_gflop_s"] = rounded(flops / bf16 / 1e9, 1)
                entry["bf16_speedup"] = rounded(f32 / bf16, 3)
                line += "; bf16 \(rounded(bf16 * 1e3, 2)) ms = \(rounded(flops / bf16 / 1e9, 1)) GFLOP/s (\(rounded(f32 / bf16, 2))×)"
            }
            note(line)
            cases.append(entry)
        }
        return ["method": "conv1d(x [1, Cin, T], weight [Cout, Cin, K], bias, zero padding keeping T), median of \(repetitions) after one warm-up, output allocation included; bf16 only on avx512_bf16 (elsewhere bf16 weights are widened to the f32 path)",
                "isa": "\(KernelISA.current)", "native_bf16": native, "cases": cases]
    }
}
