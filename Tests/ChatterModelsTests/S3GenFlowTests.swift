import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Parity of the S3Gen flow against upstream chatterbox-tts 0.1.7 modules with reduced configs and
/// seeded random weights (`tools/fixtures/fixturegen/s3gen_flow.py`).
@Suite struct S3GenFlowTests {
    struct Loaded {
        let fixture: Fixture
        let flow: S3GenFlow
        func testCase(_ name: String) -> Fixture.Case { fixture.cases.first { $0.name == name }! }
        func tokens(_ name: String, _ role: String) throws -> [Int] {
            try fixture.tensor(testCase(name), role).integers().map { Int($0) }
        }
        func reference() throws -> FlowReference {
            let mel = testCase("mel")
            let feat = try fixture.tensor(mel, "prompt_feat")
            return try FlowReference(promptTokens: try tokens("mel", "prompt_token"),
                                     promptMel: feat.reshaped([feat.shape[1], feat.shape[2]]),
                                     embedding: try fixture.tensor(mel, "embedding"))
        }
    }

    static func load(_ name: String) throws -> Loaded {
        let fixture = try Fixture(name)
        let model = fixture.cases.first { $0.name == "model" }!
        let flow = try S3GenFlow(weights: fixture.file.scoped("model.flow."), decoderHeads: model.int("dec_heads"))
        return Loaded(fixture: fixture, flow: flow)
    }

    static let tolerance: Float = 1e-4

    @Test(arguments: ["s3gen/flow", "s3gen/flow_meanflow"])
    func encoderMatchesUpstream(_ name: String) throws {
        let m = try Self.load(name)
        let c = m.testCase("encoder")
        let tokens = try m.tokens("encoder", "prompt_token") + m.tokens("encoder", "token")
        let h = try m.flow.encode(tokens)
        let expectedH = try m.fixture.tensor(c, "h")
        expectParity(h, expectedH.reshaped(Array(expectedH.shape.dropFirst())), tolerance: Self.tolerance, "\(name) encoder h")
        let mu = try m.flow.mu(tokens)
        let expectedMu = try m.fixture.tensor(c, "mu")
        expectParity(mu, expectedMu.reshaped(Array(expectedMu.shape.dropFirst())), tolerance: Self.tolerance, "\(name) mu")
    }

    @Test(arguments: ["s3gen/flow", "s3gen/flow_meanflow"])
    func estimatorMatchesUpstream(_ name: String) throws {
        let m = try Self.load(name)
        let c = m.testCase("estimator")
        let estimator = m.flow.cfm.estimator
        let v = estimator(x: try m.fixture.tensor(c, "x"), mu: try m.fixture.tensor(c, "mu"),
                          spks: try m.fixture.tensor(c, "spks"), cond: try m.fixture.tensor(c, "cond"),
                          t: [c.float("t"), c.float("t")], r: estimator.isMeanflow ? [c.float("r"), c.float("r")] : nil)
        expectParity(v, try m.fixture.tensor(c, "output"), tolerance: Self.tolerance, "\(name) estimator (batch 2)")
    }

    /// The estimator with each attention algorithm (the default is one of them; the other must hold
    /// the same tolerance against upstream).
    @Test(arguments: ["s3gen/flow", "s3gen/flow_meanflow"], AttentionAlgorithm.allCases)
    func estimatorMatchesUpstreamWithEitherAttention(_ name: String, _ attention: AttentionAlgorithm) throws {
        let fixture = try Fixture(name)
        let model = fixture.cases.first { $0.name == "model" }!
        let estimator = try ConditionalDecoder(weights: fixture.file.scoped("model.flow.decoder.estimator."),
                                               heads: model.int("dec_heads"), attention: attention)
        let c = fixture.cases.first { $0.name == "estimator" }!
        let v = estimator(x: try fixture.tensor(c, "x"), mu: try fixture.tensor(c, "mu"),
                          spks: try fixture.tensor(c, "spks"), cond: try fixture.tensor(c, "cond"),
                          t: [c.float("t"), c.float("t")], r: estimator.isMeanflow ? [c.float("r"), c.float("r")] : nil)
        expectParity(v, try fixture.tensor(c, "output"), tolerance: Self.tolerance, "\(name) estimator (batch 2), \(attention) attention")
    }

    @Test(arguments: ["s3gen/flow", "s3gen/flow_meanflow"])
    func melMatchesUpstreamWithInjectedNoise(_ name: String) throws {
        let m = try Self.load(name)
        let c = m.testCase("mel")
        let reference = try m.reference()
        let spks = m.flow.speakerConditioning(reference.embedding)
        let expectedSpks = try m.fixture.tensor(c, "spks")
        expectParity(spks, expectedSpks.reshaped([expectedSpks.count]), tolerance: Self.tolerance, "\(name) spks")
        let noise = try m.fixture.tensor(c, "noise")
        let mel = try m.flow.inference(tokens: try m.tokens("mel", "token"), reference: reference, steps: c.int("steps"),
                                       noise: noise.reshaped([noise.shape[1], noise.shape[2]]))
        let expected = try m.fixture.tensor(c, "mel")
        #expect(mel.shape == [80, 2 * c.int("T")])
        expectParity(mel, expected.reshaped([expected.shape[1], expected.shape[2]]), tolerance: Self.tolerance,
                         "\(name) mel (\(c.int("steps")) steps)")
    }

    @Test func unfinalizedHoldsBackTheLookaheadFrames() throws {
        let m = try Self.load("s3gen/flow")
        let reference = try m.reference()
        let tokens = try m.tokens("mel", "token")
        let held = try m.flow.conditioning(tokens: tokens, reference: reference, finalize: false)
        let full = try m.flow.conditioning(tokens: tokens, reference: reference, finalize: true)
        #expect(held.mu.shape[1] == full.mu.shape[1] - 6)
        // Same computation over the same tokens (GEMM blocking may differ in the last bits).
        let difference = ParityError(held.mu.scalars(), full.mu.slice(1, 0..<(full.mu.shape[1] - 6)).contiguous().scalars())
        #expect(difference.relative < 1e-6, "\(difference)")
        let mel = try m.flow.inference(tokens: tokens, reference: reference, finalize: false, steps: 2, seed: 3)
        #expect(mel.shape == [80, 2 * tokens.count - 6])
        #expect(throws: FlowError.nothingToEmit(tokens: 3, lookahead: 3)) {
            try m.flow.inference(tokens: [1, 2, 3], reference: reference, finalize: false)
        }
    }

    @Test func streamingEmitsEveryFrameOnceAndEndsOnTheOneShotDecode() throws {
        let m = try Self.load("s3gen/flow")
        let reference = try m.reference()
        let tokens = try m.tokens("mel", "token")  // 7 tokens
        var stream = FlowStream(flow: m.flow, reference: reference, steps: 4, seed: 9)
        let first = try stream.push(Array(tokens[0..<3]))
        #expect(first.shape == [80, 0])  // 3 tokens are all lookahead
        let second = try stream.push(Array(tokens[3..<5]))
        #expect(second.shape == [80, 2 * 5 - 6])
        let last = try stream.push(Array(tokens[5...]), final: true)
        #expect(last.shape == [80, 2 * 7 - second.shape[1]])
        #expect(throws: FlowError.streamFinished) { _ = try stream.push([1]) }
        let oneShot = try m.flow.inference(tokens: tokens, reference: reference, steps: 4, seed: 9)
        let split = second.shape[1]
        let tail = ParityError(last.scalars(), oneShot.slice(1, split..<oneShot.shape[1]).contiguous().scalars())
        #expect(tail.relative <= 1e-6, "final push vs one-shot: \(tail)")  // identical computation (0 here)
        // Frames emitted early saw fewer future tokens (global attention): how close they stay.
        let early = ParityError(second.scalars(), oneShot.slice(1, 0..<split).contiguous().scalars())
        print("streamed early frames vs one-shot: \(early)")
        #expect(early.relative < 1)
    }

    @Test func anEmptyPromptDecodesTheTokensAlone() throws {
        let m = try Self.load("s3gen/flow")
        let reference = try m.reference()
        let bare = try FlowReference(promptTokens: [], promptMel: Tensor(zeros: [0, 80]), embedding: reference.embedding)
        let mel = try m.flow.inference(tokens: [1, 2, 3, 4], reference: bare, steps: 2, seed: 1)
        #expect(mel.shape == [80, 8])
        #expect(mel.scalars().allSatisfy { $0.isFinite })
    }

    /// A store that records which keys a model reads.
    final class RecordingWeights: WeightStore, @unchecked Sendable {
        let base: any WeightStore
        var read: Set<String> = []
        init(_ base: any WeightStore) { self.base = base }
        var source: String { base.source }
        func contains(_ key: String) -> Bool { base.contains(key) }
        func tensor(_ key: String) throws -> Tensor {
            read.insert(key)
            return try base.tensor(key)
        }
    }

    @Test(arguments: ["s3gen/flow", "s3gen/flow_meanflow"])
    func everyFlowWeightIsUsed(_ name: String) throws {
        let fixture = try Fixture(name)
        let recording = RecordingWeights(fixture.file)
        let model = fixture.cases.first { $0.name == "model" }!
        _ = try S3GenFlow(weights: recording.scoped("model.flow."), decoderHeads: model.int("dec_heads"))
        let all = Set(fixture.file.names.filter { $0.hasPrefix("model.flow.") })
        #expect(all.subtracting(recording.read).sorted() == [])
        #expect(recording.read.subtracting(all).sorted() == [])
    }

    @Test func badInputsThrowTypedErrors() throws {
        let m = try Self.load("s3gen/flow")
        let reference = try m.reference()
        let vocabulary = m.flow.vocabulary
        #expect(throws: FlowError.noTokens) { try m.flow.inference(tokens: [], reference: reference) }
        #expect(throws: FlowError.tokenOutOfRange(index: reference.promptTokens.count + 1, token: vocabulary, vocabulary: vocabulary)) {
            try m.flow.inference(tokens: [0, vocabulary], reference: reference)
        }
        #expect(throws: FlowError.tokenOutOfRange(index: 0, token: 6561, vocabulary: vocabulary)) { try m.flow.encode([6561]) }
        #expect(throws: FlowError.promptLengthMismatch(promptTokens: 5, promptFrames: 9, expectedFrames: 10)) {
            try FlowReference(promptTokens: reference.promptTokens, promptMel: reference.promptMel.slice(0, 0..<9),
                              embedding: reference.embedding)
        }
        let odd = try FlowReference.aligned(promptTokens: reference.promptTokens,
                                            promptMel: concatenate([reference.promptMel, reference.promptMel.slice(0, 0..<1)], axis: 0),
                                            embedding: reference.embedding)
        #expect(odd.promptTokens.count == 5 && odd.promptMel.shape == [10, 80])
        let short = try FlowReference.aligned(promptTokens: reference.promptTokens, promptMel: reference.promptMel.slice(0, 0..<7),
                                              embedding: reference.embedding)
        #expect(short.promptTokens == Array(reference.promptTokens.prefix(3)) && short.promptMel.shape == [6, 80])
        var mel = reference.promptMel.scalars()
        mel[17] = .nan
        #expect(throws: FlowError.nonFiniteReference(what: "prompt mel")) {
            try FlowReference(promptTokens: reference.promptTokens, promptMel: Tensor(shape: reference.promptMel.shape, scalars: mel),
                              embedding: reference.embedding)
        }
        var e = reference.embedding.scalars()
        e[0] = .infinity
        #expect(throws: FlowError.nonFiniteReference(what: "speaker embedding")) {
            try FlowReference(promptTokens: reference.promptTokens, promptMel: reference.promptMel,
                              embedding: Tensor(shape: [e.count], scalars: e))
        }
    }

    @Test func noiseDependsOnlyOnTheAbsoluteFrame() {
        let noise = FlowNoise(seed: 42)
        let whole = noise.frames(0..<40).scalars()
        let tail = noise.frames(25..<40).scalars()
        for c in 0..<80 {
            #expect(Array(whole[(c * 40 + 25)..<(c * 40 + 40)]) == Array(tail[(c * 15)..<(c * 15 + 15)]))
        }
        let values = noise.frames(0..<500).scalars()
        let mean = values.reduce(0, +) / Float(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)
        #expect(abs(mean) < 0.02 && abs(variance - 1) < 0.03, "mean \(mean), variance \(variance)")
        #expect(FlowNoise(seed: 43).frames(0..<1).scalars() != noise.frames(0..<1).scalars())
    }

    @Test func cosineGridMatchesTheReference() {
        let grid = CausalCFM.timeGrid(steps: 10, cosine: true)
        let expected: [Float] = [0, 0.01231, 0.04894, 0.10899, 0.19098, 0.29289, 0.41221, 0.54601, 0.69098, 0.84357, 1]
        for (a, b) in zip(grid, expected) { #expect(abs(a - b) < 1e-5) }
        #expect(CausalCFM.timeGrid(steps: 2, cosine: false) == [0, 0.5, 1])
    }

    @Test func relativePositionsRunFromPlusToMinus() {
        let table = espnetRelativePositions(count: 3, dim: 4).scalars()
        // Rows: E(2), E(1), E(0), E(−1), E(−2); E(r) = [sin r, cos r, sin(r/100), cos(r/100)].
        for (k, r) in [2, 1, 0, -1, -2].enumerated() {
            let expected: [Float] = [sin(Float(r)), cos(Float(r)), sin(Float(r) / 100), cos(Float(r) / 100)]
            for i in 0..<4 { #expect(abs(table[k * 4 + i] - expected[i]) < 1e-6) }
        }
    }
}
