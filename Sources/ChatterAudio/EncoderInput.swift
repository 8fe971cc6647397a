/// How every encoder here treats samples outside [-1, 1]: values are clamped to [-1, 1] (so +inf is
/// full scale), and NaN becomes 0 (silence), the same rule `WAVFile.write` applies. A codec given
/// NaN would otherwise emit noise or a corrupt frame; clamping is what a DAC does anyway.
enum EncoderInput {
    @inline(__always) static func clamped(_ x: Float) -> Float {
        x.isNaN ? 0 : min(max(x, -1), 1)
    }

    static func clamped(_ samples: [Float]) -> [Float] {
        samples.map(clamped)
    }

    /// Full scale is 32767 (so -1 and 1 are symmetric), rounded half to even: `WAVFile.write`'s rule.
    @inline(__always) static func int16(_ x: Float) -> Int16 {
        Int16((Double(clamped(x)) * 32767).rounded(.toNearestOrEven))
    }
}
