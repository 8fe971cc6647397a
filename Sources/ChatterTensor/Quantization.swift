/// Block quantisation to signed 8-bit integers (`q8_0`): each run of 32 values is stored as an f16
/// scale `d = max|x| / 127` followed by 32 bytes `q = round(x / d)`, so `x ≈ d·q`. This halves the
/// bytes a bf16 weight reads in the memory-bound T3 decode loop.
public enum Quantization {
    public static let blockElements = 32
    public static let blockBytes = 34

    public static func quantizeQ8_0(shape: [Int], values: [Float]) -> Tensor {
        precondition(values.count % blockElements == 0, "q8_0 needs a multiple of 32 elements, got \(values.count)")
        let result = Tensor(zeros: shape, dtype: .q8_0)
        let base = result.storage.baseAddress
        for block in 0..<(values.count / blockElements) {
            let start = block * blockElements
            var maxAbs: Float = 0
            for i in 0..<blockElements { maxAbs = max(maxAbs, abs(values[start + i])) }
            let scale = maxAbs / 127
            let inverse: Float = scale == 0 ? 0 : 1 / scale
            let blockBase = base + block * blockBytes
            blockBase.storeBytes(of: Float16(scale), as: Float16.self)
            for i in 0..<blockElements {
                let q = (values[start + i] * inverse).rounded(.toNearestOrEven)
                blockBase.storeBytes(of: Int8(max(-127, min(127, q))), toByteOffset: 2 + i, as: Int8.self)
            }
        }
        return result
    }

    public static func dequantizeQ8_0(_ tensor: Tensor) -> [Float] {
        precondition(tensor.dtype == .q8_0 && tensor.isContiguous)
        let base = tensor.storage.baseAddress + tensor.byteOffset
        var result = [Float]()
        result.reserveCapacity(tensor.count)
        for block in 0..<(tensor.count / blockElements) {
            let blockBase = base + block * blockBytes
            let scale = Float(blockBase.loadUnaligned(as: Float16.self))
            for i in 0..<blockElements {
                result.append(scale * Float(blockBase.load(fromByteOffset: 2 + i, as: Int8.self)))
            }
        }
        return result
    }
}
