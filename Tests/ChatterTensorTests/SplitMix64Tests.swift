import ChatterTensor
import Testing

@Suite struct SplitMix64Tests {
    /// Reference outputs of Vigna's splitmix64.c from seed 0 and seed 1234567.
    @Test func matchesTheReferenceSequence() {
        var zero = SplitMix64(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        var other = SplitMix64(seed: 1_234_567)
        #expect(other.next() == 6_457_827_717_110_365_317)
        // `mix` is `next()` without state: the k-th output of seed s is mix(s + (k − 1)·increment).
        #expect(SplitMix64.mix(0) == 0xE220_A839_7B1D_CDAF)
        var unit = SplitMix64(seed: 9)
        for _ in 0..<1000 { let u = unit.nextUnitDouble(); #expect(u >= 0 && u < 1) }
    }
}
