/// Element types a `Tensor` can hold.
///
/// Names follow safetensors (`F32`, `BF16`, …) so that a header's dtype string maps to exactly one case.
/// `q8_0` is a block-quantised type (an f16 scale then 32 signed bytes, 34 bytes a block) that the
/// safetensors standard has no name for; our weight format stores it under the dtype name `Q8_0`
/// (weights-format.md), which readers that do not know it refuse as an unknown dtype.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"
    case q8_0 = "Q8_0"

    /// Elements that share one block (1 for every unquantised type).
    public var blockElements: Int { self == .q8_0 ? 32 : 1 }

    /// Bytes one block occupies.
    public var blockBytes: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        case .q8_0: 34
        }
    }

    /// Bytes per element for unquantised types; `nil` for block types, whose size is per block.
    public var elementBytes: Int? { blockElements == 1 ? blockBytes : nil }

    public var isFloatingPoint: Bool { [.f64, .f32, .f16, .bf16].contains(self) }

    /// Bytes needed for `elements` elements, or `nil` when `elements` does not fill whole blocks.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockElements == 0 else { return nil }
        let (bytes, overflow) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }

    /// The safetensors dtype string (`Q8_0` is our extension, weights-format.md).
    public var safetensorsName: String { rawValue }

    /// Parses a safetensors dtype string. Only the types this engine can hold are accepted.
    public init?(safetensorsName: String) {
        guard let type = DType(rawValue: safetensorsName) else { return nil }
        self = type
    }

    /// The alignment (bytes) its data needs: the element size, or for q8_0 that of its f16 scale.
    /// Files are written in decreasing alignment so that every tensor starts aligned.
    public var alignment: Int { self == .q8_0 ? 2 : blockBytes }

    public var description: String { rawValue }
}
