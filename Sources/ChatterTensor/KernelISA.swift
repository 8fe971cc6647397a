import CChatterKernels

/// The instruction-set variants of the C kernels (`CChatterKernels`), chosen at run time by cpuid.
public enum KernelISA: Int, Sendable, CaseIterable, CustomStringConvertible {
    case portable = 0, avx2 = 1, avx512 = 2

    /// The variant the kernels use on this CPU (lowered by `CHATTERSTREAM_ISA` when set).
    public static var current: KernelISA { KernelISA(rawValue: Int(chatter_kernels_isa().rawValue)) ?? .portable }

    /// Every variant that can run here, slowest first.
    public static var available: [KernelISA] { allCases.filter { $0.rawValue <= current.rawValue } }

    var c: chatter_isa { chatter_isa(rawValue: UInt32(rawValue)) }

    public var description: String { String(cString: chatter_isa_name(c)) }
}
