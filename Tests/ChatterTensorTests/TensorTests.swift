import Foundation
import Testing
@testable import ChatterTensor

@Suite struct TensorTests {
    @Test func viewsShareStorage() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let tt = t.transposed()
        #expect(tt.shape == [3, 2])
        #expect(!tt.isContiguous)
        #expect(tt.scalars() == [1, 4, 2, 5, 3, 6])
        #expect(tt.contiguous().isContiguous)
        #expect(t.slice(1, 1..<3).scalars() == [2, 3, 5, 6])
        #expect(t.reshaped([3, -1]).shape == [3, 2])
        #expect(t.unsqueezed(0).shape == [1, 2, 3])
        #expect(t.permuted([1, 0]).scalars() == tt.scalars())
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(BFloat16(1.0).bitPattern == 0x3F80)
        #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern == 0x3F80)  // tie → even
        #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern == 0x3F82)  // tie → even
        #expect(BFloat16(Float(bitPattern: 0x3F80_8001)).bitPattern == 0x3F81)
        #expect(BFloat16(.nan).floatValue.isNaN)
        let t = Tensor(shape: [3], scalars: [1.5, -2.25, 1e-3]).converted(to: .bf16)
        #expect(t.dtype == .bf16)
        #expect(t.scalars()[0...1] == [1.5, -2.25])
    }

    /// `converted(to: .bf16)` of a contiguous f32 tensor (the vectorised narrowing, in slices across
    /// the pool) gives `BFloat16.init`'s bits for every value: ties both ways, values that round up
    /// into the next binade and to infinity, ±0, subnormals, ±inf and NaN, and random values over
    /// more than one slice (600,000) with a ragged end. A strided view takes the element path; same bits.
    @Test func bf16ConversionMatchesBFloat16Bits() {
        var bits: [UInt32] = [0x3F80_8000, 0x3F81_8000, 0x3F80_8001, 0x3F7F_FFFF, 0x7F7F_FFFF, 0xFF7F_FFFF, 0x0000_0000,
                              0x8000_0000, 0x0000_0001, 0x807F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7F80_0001]
        var random = SplitMix64(seed: 0xBF16)
        while bits.count < 600_013 { bits.append(UInt32(truncatingIfNeeded: random.next())) }
        let values = bits.map { Float(bitPattern: $0) }
        let tensor = Tensor(shape: [values.count], scalars: values)
        let expected = values.map { BFloat16($0).bitPattern }
        let narrowed = tensor.converted(to: .bf16)
        #expect(narrowed.dtype == .bf16 && narrowed.shape == tensor.shape)
        let got = narrowed.withUnsafeRawBytes { Array($0.bindMemory(to: UInt16.self)) }
        let mismatches = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(mismatches.isEmpty, "\(mismatches.count) differ from BFloat16.init, first \(mismatches.prefix(3).map { "bits \(String(bits[$0.offset], radix: 16)): \($0.element.0) vs \($0.element.1)" })")
        let strided = Tensor(shape: [2, 3], scalars: [1.5, -2.25, 1e-3, 7, 8, 9]).transposed(0, 1)
        #expect(strided.converted(to: .bf16).scalars() == strided.scalars().map { BFloat16($0).floatValue })
    }

    /// q8_0 rows (whole blocks) slice along leading axes as views: GPT-2's fused qkv weight is split so.
    @Test func q8SlicesWholeRows() {
        let values = (0..<4 * 64).map { Float($0 % 61) * 0.1 - 3 }
        let q = Tensor(shape: [4, 64], scalars: values).converted(to: .q8_0)
        let rows = q.slice(0, 1..<3)
        #expect(rows.shape == [2, 64] && rows.isContiguous && rows.storage === q.storage)
        #expect(rows.scalars() == Array(q.scalars()[64..<192]))
        #expect(rows.copy().scalars() == rows.scalars())
    }

    @Test func q8RoundTripIsWithinHalfAStep() {
        let values = (0..<64).map { Float($0 - 32) * 0.37 }
        let q = Tensor(shape: [2, 32], scalars: values).converted(to: .q8_0)
        #expect(q.byteCount == 68)
        let back = q.scalars()
        for block in 0..<2 {
            let maxAbs = values[block * 32..<(block + 1) * 32].map(abs).max()!
            let step = maxAbs / 127
            let storedStep = Float(Float16(step))  // the scale is stored as f16
            let bound = storedStep * 0.5 + 127 * abs(step - storedStep) + 1e-6
            for i in 0..<32 {
                #expect(abs(back[block * 32 + i] - values[block * 32 + i]) <= bound)
            }
        }
    }

    @Test func threadPoolCoversRangeExactlyOnce() {
        let pool = ThreadPool(threadCount: 3)
        defer { pool.shutDown() }
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
        defer { hits.deallocate() }
        for round in 0..<50 {
            hits.initialize(repeating: 0)
            pool.parallelFor(1000, minimumChunk: 7) { range in for i in range { hits[i] += 1 } }
            #expect(hits.allSatisfy { $0 == 1 }, "round \(round)")
        }
        pool.threadCount = 1
        hits.initialize(repeating: 0)
        pool.parallelFor(10) { range in for i in range { hits[i] += 1 } }
        #expect(hits[0..<10].allSatisfy { $0 == 1 })
    }

    /// Back-to-back jobs (workers catch them spinning), jobs after a pause longer than the spin
    /// (workers asleep), and a chunk slower than the spin (the caller sleeps for it), with spinning
    /// on and off: every index is still covered once and every call returns.
    @Test(arguments: [0, 200_000] as [UInt64])
    func threadPoolSpinsAndSleepsCorrectly(spinNanoseconds: UInt64) {
        let pool = ThreadPool(threadCount: 2, spinNanoseconds: spinNanoseconds)
        defer { pool.shutDown() }
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        defer { hits.deallocate() }
        for round in 0..<300 {
            hits.initialize(repeating: 0)
            let slowChunk = round % 50 == 7
            pool.parallelFor(64, minimumChunk: 32) { range in
                if slowChunk && range.lowerBound == 32 { usleep(2_000) }
                for i in range { hits[i] += 1 }
            }
            #expect(hits.allSatisfy { $0 == 1 }, "round \(round)")
            if round % 60 == 59 { usleep(1_000) }
        }
    }
}
