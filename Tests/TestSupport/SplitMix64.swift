import ChatterTensor

extension SplitMix64 {
    /// Uniform in [-1, 1), for test data that needs no fixture.
    public mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
