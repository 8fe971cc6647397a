import CChatterKernels

/// The instruction-set variants of the C kernels (`CChatterKernels`), chosen at run time by cpuid.
///
/// Each level includes the ones below it. `avx512bf16` adds the bf16 dot product (`vdpbf16ps`),
/// which only the bf16 GEMM (`linear` with bf16 weights and more than 8 rows) uses; the GEMV and
/// softmax kernels run their AVX-512 variant there.
public enum KernelISA: Int, Sendable, CaseIterable, CustomStringConvertible, Comparable {
    case portable = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3

    /// The variant the kernels use on this CPU (lowered by `CHATTERSTREAM_ISA` when set).
    public static var current: KernelISA { KernelISA(rawValue: Int(chatter_kernels_isa().rawValue)) ?? .portable }

    /// Every variant that can run here, slowest first.
    public static var available: [KernelISA] { allCases.filter { $0.rawValue <= current.rawValue } }

    var c: chatter_isa { chatter_isa(rawValue: UInt32(rawValue)) }

    public var description: String { String(cString: chatter_isa_name(c)) }

    public static func < (lhs: KernelISA, rhs: KernelISA) -> Bool { lhs.rawValue < rhs.rawValue }
}
