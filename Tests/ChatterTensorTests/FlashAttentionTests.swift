import CChatterKernels
import Foundation
import Testing
import TestSupport
@testable import ChatterTensor

/// The fused (flash-style) attention kernels against their unfused reference ops.
///
/// Tolerances: fused f32 against unfused f32 differs only by rounding (each probability is
/// exp(s − m_block)·exp(m_block − m) instead of exp(s − m), sums split per key block, the output
/// row divided instead of the score row): measured ≤ 1.6e-6 of the largest output (the unfused op
/// is itself 1.5e-6 from the double-precision result, the fused one 0.5e-6); the bound, 1e-5, is
/// several times that and still fails on any algebra slip (a missed rescale or a band read one
/// diagonal off gives errors of order 1e-2 to 1). ISAs: the products are the same sgemm calls and the
/// online softmax step computes identical bits at every ISA (no FMA, the softmax's exp), so a capped
/// ISA must give exactly the portable result.
@Suite("Flash attention")
struct FlashAttentionTests {
    static let fusedTolerance: Float = 1e-5

    /// Values uniform in ±amplitude: amplitude 3 on q and k gives scores up to ~±20 at D = 64, a
    /// peaked softmax whose running maximum moves between key blocks (the online rescale matters).
    static func random(_ count: Int, seed: UInt64, amplitude: Float = 1) -> [Float] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in amplitude * random.nextFloat() }  // nextFloat is uniform in [-1, 1)
    }

    /// A q‖k‖v projection [B, T, 3·H·D], values in ±1, q and k scaled by `queryKeyAmplitude`.
    static func packedInput(batch: Int, length: Int, heads: Int, dim: Int, seed: UInt64, queryKeyAmplitude: Float = 3) -> Tensor {
        let inner = heads * dim
        let values = random(batch * length * 3 * inner, seed: seed)
        let scaled = values.enumerated().map { index, value in (index % (3 * inner)) < 2 * inner ? queryKeyAmplitude * value : value }
        return Tensor(shape: [batch, length, 3 * inner], scalars: scaled)
    }

    /// (batch, T, heads, D): T = 1; T smaller than a query block; T not a multiple of the query block
    /// (128) or the key block (512) and spanning several query blocks (300) and key blocks (600, 1100);
    /// T a whole number of query blocks (256); one head; D = 64 and 80; batch 2.
    static let packedShapes = [(1, 1, 1, 64), (2, 37, 3, 64), (1, 300, 2, 80), (2, 200, 1, 64), (1, 600, 2, 64),
                               (1, 256, 1, 80), (2, 1100, 1, 80)]

    @Test func fusedPackedSelfAttentionMatchesUnfused() {
        for (batch, length, heads, dim) in Self.packedShapes {
            let qkv = Self.packedInput(batch: batch, length: length, heads: heads, dim: dim, seed: UInt64(length * 7 + dim))
            let unfused = packedSelfAttention(qkv, heads: heads, algorithm: .unfused)
            let fused = packedSelfAttention(qkv, heads: heads, algorithm: .fused)
            expectParity(fused, unfused, tolerance: Self.fusedTolerance, "fused packed B\(batch) T\(length) H\(heads) D\(dim)")
        }
    }

    /// Small blocks (query 16, keys 24) over T = 100: seven key blocks per query block, the last of
    /// each partial (100 = 4·24 + 4), so every row is rescaled many times.
    @Test func fusedPackedSelfAttentionWithSmallBlocks() {
        let (batch, length, heads, dim) = (2, 100, 2, 64)
        let qkv = Self.packedInput(batch: batch, length: length, heads: heads, dim: dim, seed: 99)
        let unfused = packedSelfAttention(qkv, heads: heads, algorithm: .unfused)
        let fused = Tensor(zeros: unfused.shape)
        flashPackedSelfAttention(qkv, into: fused, heads: heads, scale: 1 / 8, isa: .current,
                                 blocks: .init(query: 16, keys: 24))
        expectParity(fused, unfused, tolerance: Self.fusedTolerance, "fused packed, 16×24 blocks")
    }

    /// Both algorithms against the formula in double precision (an independent reference), small
    /// blocks for the fused one: measured 5e-7 (fused) and 1.5e-6 (unfused) of the largest output.
    @Test func packedSelfAttentionAgainstDoublePrecision() {
        let (batch, length, heads, dim) = (2, 100, 2, 64)
        let qkv = Self.packedInput(batch: batch, length: length, heads: heads, dim: dim, seed: 99)
        let x = qkv.scalars(), inner = heads * dim, width = 3 * inner
        var exact = [Float](repeating: 0, count: batch * length * inner)
        for b in 0..<batch {
            for h in 0..<heads {
                let row = { (t: Int, part: Int, d: Int) in Double(x[(b * length + t) * width + part * inner + h * dim + d]) }
                for i in 0..<length {
                    let scores = (0..<length).map { j in (0..<dim).reduce(0.0) { $0 + row(i, 0, $1) * row(j, 1, $1) } / 8 }
                    let peak = scores.max()!
                    let weights = scores.map { Foundation.exp($0 - peak) }
                    let total = weights.reduce(0, +)
                    for d in 0..<dim {
                        exact[(b * length + i) * inner + h * dim + d] = Float((0..<length).reduce(0.0) { $0 + weights[$1] * row($1, 2, d) } / total)
                    }
                }
            }
        }
        let unfused = packedSelfAttention(qkv, heads: heads, algorithm: .unfused)
        let fused = Tensor(zeros: unfused.shape)
        flashPackedSelfAttention(qkv, into: fused, heads: heads, scale: 1 / 8, isa: .current, blocks: .init(query: 16, keys: 24))
        expectParity(unfused.scalars(), exact, tolerance: Self.fusedTolerance, "unfused packed against double precision")
        expectParity(fused.scalars(), exact, tolerance: Self.fusedTolerance, "fused packed (16×24 blocks) against double precision")
        expectParity(packedSelfAttention(qkv, heads: heads, algorithm: .fused).scalars(), exact, tolerance: Self.fusedTolerance,
                     "fused packed against double precision")
    }

    /// A key block whose scores all sit far below an earlier block's maximum must add (almost)
    /// nothing, and a later block far above must take over: keys ordered by size make the running
    /// maximum jump at every block.
    @Test func fusedPackedSelfAttentionWithAMovingMaximum() {
        let (length, heads, dim) = (90, 1, 16)
        let inner = heads * dim
        var values = [Float](repeating: 0, count: length * 3 * inner)
        for t in 0..<length {
            for d in 0..<dim {
                values[t * 3 * inner + d] = 1                                          // q: all ones
                values[t * 3 * inner + inner + d] = Float(t % 30) * 0.5 - 7            // k: three rising ramps
                values[t * 3 * inner + 2 * inner + d] = Float((t * 13 + d * 7) % 17) - 8  // v
            }
        }
        let qkv = Tensor(shape: [1, length, 3 * inner], scalars: values)
        let unfused = packedSelfAttention(qkv, heads: heads, scale: 0.25, algorithm: .unfused)
        let fused = Tensor(zeros: unfused.shape)
        flashPackedSelfAttention(qkv, into: fused, heads: heads, scale: 0.25, isa: .current, blocks: .init(query: 8, keys: 16))
        expectParity(fused, unfused, tolerance: Self.fusedTolerance, "fused packed, rising keys")
    }

    @Test(arguments: AttentionAlgorithm.allCases)
    func packedSelfAttentionIsTheSameAtEveryISA(_ algorithm: AttentionAlgorithm) {
        // 600 frames: two key blocks of the fused loop.
        for (batch, length, heads, dim) in [(2, 37, 3, 64), (1, 600, 2, 80)] {
            let qkv = Self.packedInput(batch: batch, length: length, heads: heads, dim: dim, seed: UInt64(length))
            let portable = packedSelfAttention(qkv, heads: heads, algorithm: algorithm, isa: .portable).scalars()
            for isa in KernelISA.available {
                #expect(packedSelfAttention(qkv, heads: heads, algorithm: algorithm, isa: isa).scalars() == portable,
                        "\(algorithm) packed at \(isa) against portable, T\(length) D\(dim)")
                #expect(packedSelfAttention(qkv, heads: heads, products: .bf16, algorithm: algorithm, isa: min(isa, .avx512)).scalars()
                        == portable, "\(algorithm), bf16 products capped at \(min(isa, .avx512)) are the f32 op")
            }
        }
    }

    /// bf16 products, fused, against the unfused f32 op: queries, scaled keys, unnormalised
    /// probabilities and values rounded to bf16 (8 significant bits), f32 sums and softmax
    /// statistics. A score s carries an error of about |s|·2⁻⁸ from the rounded q and k, so the error
    /// grows with the scores' spread: inputs in ±1 (LayerNorm-sized, as the CFM's and the unfused
    /// bf16 test's) give ~3e-3 of the largest output for both the fused and the unfused bf16 op
    /// (q, k in ±3, scores to ±20, give ~5e-2 for both). The bound, 1e-2, is the unfused bf16 op's and
    /// still catches a wrong operand or block offset (errors of order one); and fusing must not make
    /// bf16 worse than the unfused bf16 op beyond rounding noise.
    @Test(.enabled(if: KernelISA.current >= .avx512bf16, "bf16 products need avx512_bf16"))
    func fusedPackedSelfAttentionWithBF16Products() {
        for (batch, length, heads, dim) in Self.packedShapes {
            let qkv = Self.packedInput(batch: batch, length: length, heads: heads, dim: dim, seed: UInt64(length * 3 + dim),
                                       queryKeyAmplitude: 1)
            let reference = packedSelfAttention(qkv, heads: heads, algorithm: .unfused)
            let fused = packedSelfAttention(qkv, heads: heads, products: .bf16, algorithm: .fused)
            let unfusedBF16 = packedSelfAttention(qkv, heads: heads, products: .bf16, algorithm: .unfused)
            let label = "B\(batch) T\(length) H\(heads) D\(dim)"
            let fusedError = expectParity(fused, reference, tolerance: 1e-2, "fused bf16 against f32, \(label)")
            let unfusedError = ParityError(unfusedBF16.scalars(), reference.scalars())
            print("unfused bf16 against f32, \(label): \(unfusedError)")
            #expect(fusedError.relative <= 2 * unfusedError.relative + 1e-4, "fused bf16 \(fusedError) vs unfused bf16 \(unfusedError)")
        }
        let qkv = Self.packedInput(batch: 2, length: 100, heads: 2, dim: 64, seed: 5, queryKeyAmplitude: 1)
        let reference = packedSelfAttention(qkv, heads: 2, algorithm: .unfused)
        let small = Tensor(zeros: reference.shape)
        flashPackedSelfAttentionBF16(qkv, into: small, heads: 2, scale: 1 / 8, blocks: .init(query: 16, keys: 24))
        expectParity(small, reference, tolerance: 1e-2, "fused bf16, 16×24 blocks")
    }

    // MARK: - Relative position

    struct RelativeInputs {
        let query, key, value, positions, biasU, biasV: Tensor
        let heads: Int
    }

    static func relativeInputs(n: Int, heads: Int, dim: Int, seed: UInt64) -> RelativeInputs {
        let width = heads * dim
        func tensor(_ shape: [Int], _ offset: UInt64, amplitude: Float) -> Tensor {
            Tensor(shape: shape, scalars: random(shape.reduce(1, *), seed: seed &+ offset, amplitude: amplitude))
        }
        return RelativeInputs(query: tensor([n, width], 1, amplitude: 2), key: tensor([n, width], 2, amplitude: 2),
                              value: tensor([n, width], 3, amplitude: 1), positions: tensor([2 * n - 1, width], 4, amplitude: 2),
                              biasU: tensor([heads, dim], 5, amplitude: 0.5), biasV: tensor([heads, dim], 6, amplitude: 0.5),
                              heads: heads)
    }

    static func relative(_ x: RelativeInputs, _ algorithm: AttentionAlgorithm, isa: KernelISA = .current) -> Tensor {
        relativePositionSelfAttention(query: x.query, key: x.key, value: x.value, positions: x.positions,
                                      biasU: x.biasU, biasV: x.biasV, heads: x.heads, algorithm: algorithm, isa: isa)
    }

    /// (n, heads, D), as for the packed op; 300 and 600 are the encoder's token and frame counts for a
    /// 10 s prompt and 2 s of new audio, with its 8 heads of 64.
    static let relativeShapes = [(1, 1, 64), (5, 2, 64), (37, 3, 80), (130, 1, 64), (300, 8, 64), (600, 2, 80), (1100, 1, 64)]

    @Test func fusedRelativePositionAttentionMatchesUnfused() {
        for (n, heads, dim) in Self.relativeShapes {
            let x = Self.relativeInputs(n: n, heads: heads, dim: dim, seed: UInt64(n * 11 + dim))
            expectParity(Self.relative(x, .fused), Self.relative(x, .unfused), tolerance: Self.fusedTolerance,
                         "fused relative-position n\(n) H\(heads) D\(dim)")
        }
    }

    /// Small blocks (query 16, keys 24) over n = 100: the band of every (query block, key block)
    /// pair starts at a different relative distance, partial blocks on both axes.
    @Test func fusedRelativePositionAttentionWithSmallBlocks() {
        for (n, heads, dim) in [(100, 2, 64), (13, 1, 80)] {
            let x = Self.relativeInputs(n: n, heads: heads, dim: dim, seed: UInt64(n))
            let fused = flashRelativePositionSelfAttention(query: x.query, key: x.key, value: x.value, positions: x.positions,
                                                           biasU: x.biasU, biasV: x.biasV, heads: heads,
                                                           scale: 1 / Float(dim).squareRoot(), isa: .current,
                                                           blocks: .init(query: 16, keys: 24))
            expectParity(fused, Self.relative(x, .unfused), tolerance: Self.fusedTolerance,
                         "fused relative-position, 16×24 blocks, n\(n) D\(dim)")
        }
    }

    /// The unfused reference itself against the formula, in double precision, at a size small enough
    /// to loop over: scores[i, j] = ((q_i + u)·k_j + (q_i + v)·p_{n−1−i+j}) / √D.
    @Test func relativePositionAttentionFollowsTheFormula() {
        let (n, heads, dim) = (6, 2, 8)
        let x = Self.relativeInputs(n: n, heads: heads, dim: dim, seed: 3)
        let (q, k, v, p) = (x.query.scalars(), x.key.scalars(), x.value.scalars(), x.positions.scalars())
        let (u, bv) = (x.biasU.scalars(), x.biasV.scalars())
        let width = heads * dim
        var expected = [Float](repeating: 0, count: n * width)
        for h in 0..<heads {
            for i in 0..<n {
                var scores = [Double](repeating: 0, count: n)
                for j in 0..<n {
                    var s = 0.0
                    for d in 0..<dim {
                        let c = h * dim + d
                        s += Double(q[i * width + c] + u[c]) * Double(k[j * width + c])
                        s += Double(q[i * width + c] + bv[c]) * Double(p[(n - 1 - i + j) * width + c])
                    }
                    scores[j] = s / Double(dim).squareRoot()
                }
                let peak = scores.max()!
                let weights = scores.map { Foundation.exp($0 - peak) }
                let total = weights.reduce(0, +)
                for d in 0..<dim {
                    var o = 0.0
                    for j in 0..<n { o += weights[j] / total * Double(v[j * width + h * dim + d]) }
                    expected[i * width + h * dim + d] = Float(o)
                }
            }
        }
        let expectedTensor = Tensor(shape: [n, width], scalars: expected)
        expectParity(Self.relative(x, .unfused), expectedTensor, tolerance: 1e-5, "unfused relative-position against the formula")
        expectParity(Self.relative(x, .fused), expectedTensor, tolerance: 1e-5, "fused relative-position against the formula")
    }

    @Test func fusedRelativePositionAttentionIsTheSameAtEveryISA() {
        for (n, heads, dim) in [(37, 3, 80), (600, 2, 64)] {  // 600: two key blocks
            let x = Self.relativeInputs(n: n, heads: heads, dim: dim, seed: UInt64(n + 1))
            let portable = Self.relative(x, .fused, isa: .portable).scalars()
            for isa in KernelISA.available {
                #expect(Self.relative(x, .fused, isa: isa).scalars() == portable, "fused relative-position at \(isa), n\(n)")
            }
        }
    }

    /// The online softmax step alone, at every ISA, against a scalar model of its contract: the
    /// combine with the band read diagonally, the running maximum and sum, the rescale of out, and the
    /// first block zeroing out.
    @Test func onlineSoftmaxStepFollowsItsContract() {
        let (rows, keys, dim) = (5, 37, 20)
        let ldScores = 40, ldBand = rows + keys + 3, ldOut = 24
        let band = Self.random(rows * ldBand, seed: 11, amplitude: 4)
        let firstScores = Self.random(rows * ldScores, seed: 12, amplitude: 4)
        let secondScores = Self.random(rows * ldScores, seed: 13, amplitude: 8)
        let scale: Float = 0.7
        for isa in KernelISA.available {
            var scores = firstScores, out = Self.random(rows * ldOut, seed: 14)  // garbage the first block clears
            var rowMax = [Float](repeating: -.infinity, count: rows), rowSum = [Float](repeating: 0, count: rows)
            _ = chatter_attention_online_softmax_isa(isa.c, &scores, ldScores, rows, keys, band, ldBand, scale,
                                                     &rowMax, &rowSum, &out, ldOut, dim)
            for r in 0..<rows {
                let combined = (0..<keys).map { (firstScores[r * ldScores + $0] + band[r * ldBand + rows - 1 - r + $0]) * scale }
                let peak = combined.max()!
                #expect(rowMax[r] == peak, "\(isa) row \(r) maximum")
                let expected = combined.map { Foundation.exp(Double($0 - peak)) }
                for c in 0..<keys { #expect(abs(Double(scores[r * ldScores + c]) - expected[c]) <= 3e-7 * max(1, expected[c])) }
                #expect(abs(Double(rowSum[r]) - expected.reduce(0, +)) <= 1e-5 * expected.reduce(0, +), "\(isa) row \(r) sum")
                #expect((0..<dim).allSatisfy { out[r * ldOut + $0] == 0 }, "\(isa) row \(r): the first block clears out")
            }
            // A second block without a band: out, set to ones, is rescaled by exp(m_old − m_new).
            for r in 0..<rows { for d in 0..<dim { out[r * ldOut + d] = 1 } }
            let (oldMax, oldSum, oldOut) = (rowMax, rowSum, out)
            scores = secondScores
            _ = chatter_attention_online_softmax_isa(isa.c, &scores, ldScores, rows, keys, nil, 0, 1,
                                                     &rowMax, &rowSum, &out, ldOut, dim)
            for r in 0..<rows {
                let block = Array(secondScores[(r * ldScores)..<(r * ldScores + keys)])
                let newMax = max(oldMax[r], block.max()!)
                #expect(rowMax[r] == newMax)
                let alpha = Foundation.exp(Double(oldMax[r] - newMax))
                let sum = Double(oldSum[r]) * alpha + block.map { Foundation.exp(Double($0 - newMax)) }.reduce(0, +)
                #expect(abs(Double(rowSum[r]) - sum) <= 1e-5 * sum, "\(isa) row \(r) running sum")
                #expect(abs(Double(out[r * ldOut]) - alpha) <= 1e-6, "\(isa) row \(r) rescale")
                #expect(out[r * ldOut + dim] == oldOut[r * ldOut + dim], "\(isa) row \(r): columns past dim untouched")
            }
        }
    }
}

