import Testing
import TestSupport
@testable import ChatterTensor

private let hasBF16 = KernelISA.current >= .avx512bf16
private let skipReason: Comment = "needs avx512_bf16 (CPUID leaf 7 subleaf 1, EAX bit 5): absent on this CPU or capped by CHATTERSTREAM_ISA"

/// `conv1d` with a bf16 weight (S3Gen's bf16 compute). On avx512_bf16 it runs the native bf16 GEMM
/// (`conv1dBF16`): the input rounded to bf16, products exact in f32, f32 sums. Its reference is the
/// f32 path on the operands it actually multiplies (the input rounded to bf16, the weight widened,
/// exactly), so what is left is the order of the f32 sums over Cin·K ≤ 1408 terms: 1e-5 of max|ref|,
/// the bf16 GEMM tests' bound. Elsewhere (or capped below avx512_bf16) the weight is widened and the
/// f32 path runs on the f32 input: equal to it bit for bit.
///
/// Geometries are S3Gen's: the CFM's causal k = 3 and pointwise convs, the encoder's pre-lookahead
/// (k = 4, right padding) and up-sampling convs, HiFT's dilated resblock convs (k = 3, 7, 11;
/// dilation 1, 3, 5) and its strided source convs; channel counts not multiples of 16 or 32; enough
/// frames that a dilated conv is cut into several unfolded tiles.
@Suite struct Conv1dBF16Tests {
    static let tolerance: Float = 1e-5

    struct Case: CustomStringConvertible, Sendable {
        var batch = 1
        var inChannels: Int
        var outChannels: Int
        var length: Int
        var kernel: Int
        var stride = 1
        var padding = 0
        var dilation = 1
        var mode: Conv1dPadding = .zeros
        var description: String {
            "B\(batch) \(inChannels)→\(outChannels) T\(length) k\(kernel) s\(stride) p\(padding) d\(dilation) \(mode)"
        }
    }

    static let cases: [Case] = [
        Case(inChannels: 80, outChannels: 96, length: 50, kernel: 3, mode: .causal),
        Case(batch: 2, inChannels: 67, outChannels: 37, length: 41, kernel: 1),
        Case(inChannels: 33, outChannels: 70, length: 29, kernel: 4, padding: 3),
        Case(inChannels: 64, outChannels: 48, length: 3000, kernel: 11, padding: 25, dilation: 5),
        Case(inChannels: 40, outChannels: 40, length: 200, kernel: 7, padding: 9, dilation: 3),
        Case(inChannels: 18, outChannels: 64, length: 301, kernel: 6, stride: 3, padding: 1),
        Case(inChannels: 31, outChannels: 17, length: 97, kernel: 7, padding: 3, mode: .reflect),
        Case(inChannels: 9, outChannels: 5, length: 1, kernel: 1),
    ]

    static func operands(_ c: Case, seed: UInt64) -> (x: Tensor, weight: Tensor, bias: Tensor) {
        var generator = SplitMix64(seed: seed)
        let x = Tensor(shape: [c.batch, c.inChannels, c.length],
                       scalars: (0..<c.batch * c.inChannels * c.length).map { _ in generator.nextFloat() * 2 - 1 })
        let weight = Tensor(shape: [c.outChannels, c.inChannels, c.kernel],
                            scalars: (0..<c.outChannels * c.inChannels * c.kernel).map { _ in (generator.nextFloat() * 2 - 1) * 0.1 })
            .converted(to: .bf16)
        let bias = Tensor(shape: [c.outChannels], scalars: (0..<c.outChannels).map { _ in generator.nextFloat() })
        return (x, weight, bias)
    }

    static func run(_ c: Case, _ x: Tensor, _ weight: Tensor, _ bias: Tensor?, isa: KernelISA = .current) -> Tensor {
        conv1d(x, weight: weight, bias: bias, stride: c.stride, padding: c.padding, dilation: c.dilation, paddingMode: c.mode, isa: isa)
    }

    @Test(.enabled(if: hasBF16, skipReason), arguments: cases)
    func nativeMatchesTheF32PathOnBF16Operands(_ c: Case) {
        let (x, weight, bias) = Self.operands(c, seed: UInt64(c.inChannels * 1009 + c.kernel * 31 + c.dilation))
        let rounded = Tensor(shape: x.shape, scalars: x.scalars().map { BFloat16($0).floatValue })
        let widened = weight.converted(to: .f32)
        for withBias in [false, true] {
            let expected = Self.run(c, rounded, widened, withBias ? bias : nil)
            let output = Self.run(c, x, weight, withBias ? bias : nil)
            #expect(output.shape == expected.shape)
            expectParity(output.scalars(), expected.scalars(), tolerance: Self.tolerance, "bf16 conv1d \(c)\(withBias ? " +bias" : "")")
        }
        // And against the unrounded f32 input: the error is the input's bf16 rounding (≤ 2⁻⁸ relative
        // per element), which over Cin·K random-signed terms stays near 2⁻⁹·√(Cin·K) of a typical output.
        let f32 = ParityError(Self.run(c, x, weight, bias).scalars(), Self.run(c, x, widened, bias).scalars())
        print("conv1d \(c): bf16 vs f32 activations: \(f32)")
        #expect(f32.relative < 1e-2, "\(c): bf16 against f32 activations \(f32)")
    }

    /// Below avx512_bf16 the weight is widened (exactly) and the f32 path runs: bit for bit the f32
    /// convolution with the widened weight.
    @Test(arguments: [cases[0], cases[3], cases[5]])
    func fallbackIsTheF32PathOnTheWidenedWeight(_ c: Case) {
        let (x, weight, bias) = Self.operands(c, seed: 7)
        let expected = Self.run(c, x, weight.converted(to: .f32), bias).scalars()
        for isa in KernelISA.available where isa < .avx512bf16 {
            #expect(Self.run(c, x, weight, bias, isa: isa).scalars() == expected, "\(c) at \(isa)")
        }
    }

    /// A weight packed once (`PackedConvWeightBF16`, what the model's conv layers hold) gives the
    /// bits of the per-call packing; a pack of another shape is ignored, not misread; where the native
    /// GEMM does not run there is no pack.
    @Test(arguments: cases)
    func packedWeightGivesThePerCallBits(_ c: Case) {
        let (x, weight, bias) = Self.operands(c, seed: UInt64(c.outChannels * 13 + c.length))
        guard hasBF16 else {
            #expect(PackedConvWeightBF16(weight: weight) == nil, "no pack below avx512_bf16")
            return
        }
        let pack = PackedConvWeightBF16(weight: weight)
        #expect(pack != nil)
        let expected = Self.run(c, x, weight, bias).scalars()
        let packed = conv1d(x, weight: weight, bias: bias, stride: c.stride, padding: c.padding, dilation: c.dilation,
                            paddingMode: c.mode, packed: pack)
        #expect(packed.scalars() == expected, "\(c): packed once vs per call")
        let other = PackedConvWeightBF16(weight: Tensor(zeros: [c.outChannels + 1, c.inChannels, c.kernel]).converted(to: .bf16))
        let mismatched = conv1d(x, weight: weight, bias: bias, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                paddingMode: c.mode, packed: other)
        #expect(mismatched.scalars() == expected, "\(c): a pack of another shape is not used")
        #expect(PackedConvWeightBF16(weight: weight.converted(to: .f32)) == nil, "no pack of an f32 weight")
    }
}
