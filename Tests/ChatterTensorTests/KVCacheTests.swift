import CChatterKernels
import Testing
import TestSupport
@testable import ChatterTensor

/// The 16-bit KV cache (`KVCache.Precision` f16 and bf16): its kernels on every instruction-set
/// variant this CPU runs against the portable one and a double-precision reference, the cache's
/// round trip, and its attention against the f32 attention over the same rounded keys and values.
/// (On an AVX2-only CPU the AVX-512 variants compile but are not run: `KernelISA.available` stops at avx2.)
@Suite struct KVCacheTests {
    static let formats: [(KVCache.Precision, chatter_kv_format)] = [(.f16, CHATTER_KV_F16), (.bf16, CHATTER_KV_BF16)]

    /// What `precision` stores for `value`: Swift's own round-to-nearest-even conversions.
    static func rounded(_ value: Float, _ precision: KVCache.Precision) -> UInt16 {
        precision == .f16 ? Float16(value).bitPattern : BFloat16(value).bitPattern
    }

    static func widened(_ bits: UInt16, _ precision: KVCache.Precision) -> Float {
        precision == .f16 ? Float(Float16(bitPattern: bits)) : BFloat16(bitPattern: bits).floatValue
    }

    /// Narrowing stores what Swift's `Float16(_:)` / `BFloat16(_:)` store, bit for bit, at every ISA:
    /// ordinary values over many magnitudes, ties, f16 subnormals and underflow, the overflow edge
    /// (65504 stays, 65520 becomes inf), ±0, ±inf; NaN stays a quiet NaN. 1031 values: vector bodies and tails.
    @Test func narrowingRoundsToNearestEvenOnEveryISA() {
        var generator = SplitMix64(seed: 41)
        var values: [Float] = [0, -0, 1, -1, 65504, 65519.996, 65520, -65520, 1e9, .infinity, -.infinity,
                               0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 0x1.fffp-15, 3e-8, -5.96e-8, 1 + 0x1p-11, 1 + 0x3p-11,
                               1 + 0x1p-8, 1 + 0x3p-8, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        while values.count < 1031 {
            let magnitude = Float(generator.nextUnitDouble() * 40 - 28)   // 2⁻²⁸ … 2¹²
            values.append(Float(generator.nextUnitDouble() * 2 - 1) * Float(sign: .plus, exponent: Int(magnitude.rounded()), significand: 1))
        }
        values[700] = .nan
        values[701] = -Float(nan: 0x1234, signaling: false)
        for (precision, format) in Self.formats {
            for isa in KernelISA.available {
                var stored = [UInt16](repeating: 0, count: values.count)
                let ran = chatter_kv_narrow_isa(isa.c, format, values, &stored, values.count)
                #expect(ran.rawValue <= isa.c.rawValue)
                var mismatches = 0
                for (value, bits) in zip(values, stored) {
                    if value.isNaN {
                        let back = Self.widened(bits, precision)
                        #expect(back.isNaN && !back.isSignalingNaN, "\(precision) \(isa): NaN stored as \(bits)")
                    } else if bits != Self.rounded(value, precision) {
                        mismatches += 1
                        if mismatches <= 5 { Issue.record("\(precision) \(isa): \(value) stored as \(bits), expected \(Self.rounded(value, precision))") }
                    }
                }
                print("kv narrow \(precision) \(isa): \(mismatches) of \(values.count) values differ from Swift's rounding")
                #expect(mismatches == 0)
            }
        }
    }

    /// Widening is exact at every ISA: all 65,536 bit patterns of each format.
    @Test func wideningIsExactOnEveryISA() {
        let patterns = (0...UInt16.max).map { $0 }
        for (precision, format) in Self.formats {
            for isa in KernelISA.available {
                var widened = [Float](repeating: 0, count: patterns.count)
                chatter_kv_widen_isa(isa.c, format, patterns, &widened, patterns.count)
                let wrong = zip(patterns, widened).filter { bits, value in
                    let expected = Self.widened(bits, precision)
                    return expected.isNaN ? !value.isNaN : value.bitPattern != expected.bitPattern
                }.count
                #expect(wrong == 0, "\(precision) \(isa): \(wrong) patterns widened wrongly")
            }
        }
    }

    /// Scores and weighted sums agree with a double-precision reference over the stored halves within
    /// 1e-5 of the largest reference value, at every ISA (measured worst 1.6e-6: a 417-term weighted
    /// sum that cancels down to 0.078, f32 rounding over terms up to ~1), and with the portable
    /// variant, for head sizes with and without vector tails and key counts around the 4-key block.
    @Test(arguments: [64, 128, 8, 24, 37])
    func decodeKernelsMatchDoublePrecisionOnEveryISA(dim: Int) {
        var generator = SplitMix64(seed: UInt64(dim))
        for (precision, format) in Self.formats {
            for count in [1, 3, 4, 7, 417] {
                let ld = dim + 5   // a cache row stride larger than the head size, as [B, H, capacity, D] views have
                let q = (0..<dim).map { _ in generator.nextFloat() }
                let keys = (0..<count * ld).map { _ in Self.rounded(generator.nextFloat(), precision) }
                let values = (0..<count * ld).map { _ in Self.rounded(generator.nextFloat(), precision) }
                var p = (0..<count).map { _ in abs(generator.nextFloat()) }
                let total = p.reduce(0, +)
                p = p.map { $0 / total }
                let scale: Float = 0.125
                var referenceScores = [Float](), referenceSum = [Float]()
                for j in 0..<count {
                    var sum = 0.0
                    for d in 0..<dim { sum += Double(q[d]) * Double(Self.widened(keys[j * ld + d], precision)) }
                    referenceScores.append(Float(sum * Double(scale)))
                }
                for d in 0..<dim {
                    var sum = 0.0
                    for j in 0..<count { sum += Double(p[j]) * Double(Self.widened(values[j * ld + d], precision)) }
                    referenceSum.append(Float(sum))
                }
                var portableScores: [Float] = [], portableSum: [Float] = []
                for isa in KernelISA.available {
                    var scores = [Float](repeating: .nan, count: count), sum = [Float](repeating: .nan, count: dim)
                    chatter_kv_scores_isa(isa.c, format, q, keys, ld, count, dim, scale, &scores)
                    chatter_kv_weighted_sum_isa(isa.c, format, p, values, ld, count, dim, &sum)
                    let label = "kv \(precision) \(isa) dim \(dim) keys \(count)"
                    expectParity(scores, referenceScores, tolerance: 1e-5, "\(label) scores")
                    expectParity(sum, referenceSum, tolerance: 1e-5, "\(label) weighted sum")
                    if isa == .portable {
                        (portableScores, portableSum) = (scores, sum)
                    } else {
                        expectParity(scores, portableScores, tolerance: 1e-5, "\(label) scores vs portable")
                        expectParity(sum, portableSum, tolerance: 1e-5, "\(label) weighted sum vs portable")
                    }
                }
            }
        }
    }

    /// A 16-bit cache gives back exactly the rounded keys and values: a prefill block, single
    /// decode tokens, a broadcast prefix into two rows, and after truncation.
    @Test(arguments: [KVCache.Precision.f16, .bf16])
    func roundTripStoresRoundedValues(precision: KVCache.Precision) {
        var generator = SplitMix64(seed: 7)
        let (b, h, d) = (2, 3, 40)
        func random(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in generator.nextFloat() * 30 })
        }
        let cache = KVCache(layers: 2, batch: b, heads: h, capacity: 12, headDim: d, precision: precision)
        #expect(cache.precision == precision)
        let prefix = random([1, h, 4, d]), prefixValues = random([1, h, 4, d])
        cache.appendBroadcast(layer: 1, keys: prefix, values: prefixValues)
        let block = random([b, h, 5, d]), blockValues = random([b, h, 5, d])
        cache.append(layer: 0, keys: block, values: blockValues)
        var keys = [block], values = [blockValues]
        for _ in 0..<3 {
            let k = random([b, h, 1, d]), v = random([b, h, 1, d])
            cache.append(layer: 0, keys: k, values: v)
            keys.append(k)
            values.append(v)
        }
        func roundedTrip(_ t: Tensor) -> Tensor { t.converted(to: precision.dtype).converted(to: .f32) }
        let expectedKeys = roundedTrip(concatenate(keys, axis: 2)), expectedValues = roundedTrip(concatenate(values, axis: 2))
        #expect(cache.length(layer: 0) == 8 && cache.keys(layer: 0).dtype == .f32)
        expectParity(cache.keys(layer: 0), expectedKeys, tolerance: 0, "\(precision) cached keys")
        expectParity(cache.values(layer: 0), expectedValues, tolerance: 0, "\(precision) cached values")
        let broadcast = roundedTrip(concatenate([prefix, prefix], axis: 0))
        expectParity(cache.keys(layer: 1), broadcast, tolerance: 0, "\(precision) broadcast prefix keys")
        expectParity(cache.values(layer: 1), roundedTrip(concatenate([prefixValues, prefixValues], axis: 0)), tolerance: 0,
                     "\(precision) broadcast prefix values")
        cache.truncate(to: 6)
        expectParity(cache.keys(layer: 0), expectedKeys.slice(2, 0..<6).contiguous(), tolerance: 0, "\(precision) keys after truncation")
        // The stored error is the format's rounding and no more: half an ulp of 2⁻¹¹ (f16) or 2⁻⁸ (bf16).
        let error = ParityError(cache.keys(layer: 1).scalars(), concatenate([prefix, prefix], axis: 0).scalars())
        print("kv \(precision) round trip: \(error)")
        #expect(error.relative > 0 && error.relative <= (precision == .f16 ? 0x1p-11 : 0x1p-8))
    }

    /// Attention over a 16-bit cache equals f32 attention over an f32 cache holding the same rounded
    /// keys and values, within 1e-5 (summation order): decode steps (Tq = 1, read in place, with and
    /// without probabilities, into a preallocated output) at every ISA, and a prefill block (widened).
    @Test(arguments: [KVCache.Precision.f16, .bf16])
    func attentionMatchesF32AttentionOverRoundedValues(precision: KVCache.Precision) {
        var generator = SplitMix64(seed: 11)
        let (b, h, d, prefill) = (2, 4, 64, 9)
        func random(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in generator.nextFloat() * 2 })
        }
        func roundedTrip(_ t: Tensor) -> Tensor { t.converted(to: precision.dtype).converted(to: .f32) }
        for isa in KernelISA.available {
            let half = KVCache(layers: 1, batch: b, heads: h, capacity: 20, headDim: d, precision: precision)
            half.kernelISA = isa
            let reference = KVCache(layers: 1, batch: b, heads: h, capacity: 20, headDim: d)
            let k = random([b, h, prefill, d]), v = random([b, h, prefill, d]), q = random([b, h, prefill, d])
            half.append(layer: 0, keys: k, values: v)
            reference.append(layer: 0, keys: roundedTrip(k), values: roundedTrip(v))
            expectParity(half.attention(layer: 0, query: q), reference.attention(layer: 0, query: q), tolerance: 1e-5,
                         "\(precision) \(isa) prefill attention")
            for step in 0..<4 {
                let kt = random([b, h, 1, d]), vt = random([b, h, 1, d]), qt = random([b, h, 1, d])
                half.append(layer: 0, keys: kt, values: vt)
                reference.append(layer: 0, keys: roundedTrip(kt), values: roundedTrip(vt))
                let into = Tensor(zeros: [b, h, 1, d])
                let out = half.attention(layer: 0, query: qt, scale: 0.2, into: into)
                expectParity(out, reference.attention(layer: 0, query: qt, scale: 0.2), tolerance: 1e-5, "\(precision) \(isa) decode step \(step)")
                expectParity(into, out, tolerance: 0, "\(precision) \(isa) decode step \(step) written into the given output")
                let (o, p) = half.attentionWithProbabilities(layer: 0, query: qt)
                let (ro, rp) = reference.attentionWithProbabilities(layer: 0, query: qt)
                expectParity(o, ro, tolerance: 1e-5, "\(precision) \(isa) decode step \(step) with probabilities")
                expectParity(p, rp, tolerance: 1e-5, "\(precision) \(isa) decode step \(step) probabilities")
            }
        }
    }
}
