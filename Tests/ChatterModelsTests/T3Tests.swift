import ChatterTensor
import Foundation
import Synchronization
import Testing
import TestSupport
@testable import ChatterModels

/// A weight store that records every key read from it.
final class RecordingWeights: WeightStore {
    let base: any WeightStore
    let read = Mutex<Set<String>>([])
    init(_ base: any WeightStore) { self.base = base }
    var source: String { base.source }
    func contains(_ key: String) -> Bool { base.contains(key) }
    func tensor(_ key: String) throws -> Tensor {
        read.withLock { _ = $0.insert(key) }
        return try base.tensor(key)
    }
}

/// The tiny upstream T3 of `tools/fixtures/fixturegen/t3.py`.
struct TinyT3 {
    let fixture: Fixture
    let tiny: Fixture.Case
    let config: T3Config
    let weights: RecordingWeights
    let model: T3

    init() throws {
        fixture = try Fixture("t3/tiny")
        tiny = fixture.cases.first { $0.name == "tiny" }!
        config = T3Config(hiddenSize: tiny.int("hidden"), layers: tiny.int("layers"), heads: tiny.int("heads"),
                          headDim: tiny.int("head_dim"), intermediateSize: tiny.int("intermediate"),
                          textVocabularySize: tiny.int("text_vocab"), speechVocabularySize: tiny.int("speech_vocab"),
                          startSpeechToken: tiny.int("start_speech"), stopSpeechToken: tiny.int("stop_speech"),
                          maxTextTokens: tiny.int("max_text_tokens"), maxSpeechTokens: tiny.int("max_speech_tokens"),
                          speakerEmbeddingSize: tiny.int("speaker_size"), perceiverQueries: tiny.int("perceiver_queries"),
                          perceiverHeads: tiny.int("perceiver_heads"))
        weights = RecordingWeights(fixture.file.scoped("tiny.w."))
        model = try T3(weights: weights, config: config)
    }

    func ints(_ testCase: Fixture.Case, _ role: String) throws -> [Int] {
        try fixture.tensor(testCase, role).integers().map { Int($0) }
    }
    var speaker: [Float] { get throws { try fixture.tensor(tiny, "speaker_emb").scalars() } }
    var prompt: [Int] { get throws { try ints(tiny, "prompt_tokens") } }
    /// The fixture's text ids without the 255 … 0 wrapper.
    var text: [Int] { get throws { Array(try ints(tiny, "text_tokens").dropFirst().dropLast()) } }
}

@Suite struct T3Tests {
    @Test func prefillMatchesUpstream() throws {
        let t = try TinyT3()
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                            exaggeration: t.tiny.float("exaggeration"))
        expectParity(cond.unsqueezed(0), try t.fixture.tensor(t.tiny, "cond"), tolerance: 1e-5, "t3 conditioning")
        let decoder = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text,
                                    cfgWeight: t.tiny.float("cfg_weight"), maxNewTokens: 20)
        #expect(try t.model.wrapText(try t.text) == (try t.ints(t.tiny, "text_tokens")))
        expectParity(decoder.prefillEmbeddings, try t.fixture.tensor(t.tiny, "prefill_embeds"), tolerance: 1e-5, "t3 prefill embeddings")
        expectParity(decoder.prefillHidden, try t.fixture.tensor(t.tiny, "prefill_hidden"), tolerance: 1e-4, "t3 prefill hidden")
        expectParity(decoder.rawLogits, try t.fixture.tensor(t.tiny, "prefill_logits"), tolerance: 1e-4, "t3 prefill logits")
        let read = t.weights.read.withLock { $0 }
        #expect(!read.contains("tfmr.embed_tokens.weight"))
        #expect(!read.contains("text_head.weight"))
    }

    @Test func teacherForcedCFGLogitsMatchUpstream() throws {
        let t = try TinyT3()
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                            exaggeration: t.tiny.float("exaggeration"))
        let forced = try t.ints(t.tiny, "forced_tokens")
        let layer = t.tiny.int("attn_layer"), head = t.tiny.int("attn_head")
        let observed = T3AttentionHead(layer: layer, head: head)
        let decoder = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text,
                                    cfgWeight: t.tiny.float("cfg_weight"), maxNewTokens: forced.count, observedHeads: [observed])
        #expect(decoder.batch == 2)
        let expected = try t.fixture.tensor(t.tiny, "cfg_logits")
        let expectedProbs = try t.fixture.tensor(t.tiny, "attn_probs").scalars()
        let width = decoder.prefillLength + forced.count
        var logits: [Float] = [], probs: [Float] = []
        for step in 0...forced.count {
            logits += decoder.logits
            var row = decoder.attentionProbabilities[observed] ?? []
            #expect(row.count == decoder.prefillLength + step)
            row += [Float](repeating: 0, count: width - row.count)
            probs += row
            if step < forced.count { try decoder.feed(forced[step]) }
        }
        expectParity(Tensor(shape: expected.shape, scalars: logits), expected, tolerance: 1e-4, "t3 teacher-forced CFG logits")
        expectParity(probs, expectedProbs, tolerance: 1e-4, "t3 attention probabilities (layer \(layer), head \(head))")
        #expect(throws: T3Error.self) { try decoder.feed(0) }   // past max_new_tokens
    }

    /// bf16 weights (rank ≥ 2 tensors converted in memory, as `chatter-convert --dtype t3=bf16`)
    /// keep the teacher-forced CFG logits within 2e-2 relative (max |Δ| / max |f32|, each step) of f32.
    @Test func bf16WeightsKeepTeacherForcedLogitsNearF32() throws {
        let t = try TinyT3()
        var tensors: [String: Tensor] = [:]
        for key in t.fixture.file.names where key.hasPrefix("tiny.w.") {
            let tensor = try t.fixture.file.tensor(key)
            tensors[String(key.dropFirst("tiny.w.".count))] = tensor.rank >= 2 ? tensor.converted(to: .bf16) : tensor
        }
        let bf16 = try T3(weights: InMemoryWeights(tensors, source: "bf16"), config: t.config)
        #expect(bf16.llamaBlocks[0].qProj.weight.dtype == .bf16 && bf16.llamaBlocks[0].downProj.weight.dtype == .bf16 && bf16.speechHead.weight.dtype == .bf16)
        let forced = try t.ints(t.tiny, "forced_tokens")
        #expect(forced.count >= 19)
        func run(_ model: T3) throws -> [[Float]] {
            let cond = try model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                              exaggeration: t.tiny.float("exaggeration"))
            let decoder = try T3Decoder(model: model, conditioning: cond, textTokens: try t.text,
                                        cfgWeight: t.tiny.float("cfg_weight"), maxNewTokens: forced.count)
            var rows = [decoder.logits]
            for token in forced.prefix(19) {
                try decoder.feed(token)
                rows.append(decoder.logits)
            }
            return rows
        }
        let reference = try run(t.model), reduced = try run(bf16)
        #expect(reference.count == 20 && reduced.count == 20)
        var worst: Float = 0
        for (step, (a, b)) in zip(reduced, reference).enumerated() {
            worst = max(worst, expectParity(a, b, tolerance: 2e-2, "t3 bf16 vs f32 CFG logits, step \(step)").relative)
        }
        print("t3 bf16 vs f32 CFG logits: worst relative error over 20 steps \(worst)")
        #expect(worst > 0, "the bf16 model must actually differ from f32")
    }

    /// The Llama backbone (rotary keys, two CFG rows) over a 16-bit KV cache: teacher-forced CFG logits
    /// within the stated tolerance of the f32 cache's (max |Δ| / max |f32| each step; measured worst
    /// steps 2.0e-4 for f16 and 1.4e-3 for bf16, the tolerances 5–7× that), and the attention
    /// probabilities of an observed head (the decode path that returns them, as the alignment
    /// analyser reads them) within 1e-3 absolute (measured 1.7e-5 and 1.4e-4).
    @Test(arguments: [(KVCache.Precision.f16, Float(1e-3)), (.bf16, 1e-2)])
    func reducedPrecisionKVCacheKeepsTeacherForcedLogitsNearF32Cache(precision: KVCache.Precision, tolerance: Float) throws {
        let t = try TinyT3()
        let forced = try t.ints(t.tiny, "forced_tokens")
        let head = T3AttentionHead(layer: t.config.layers - 1, head: 1)
        func run(_ precision: KVCache.Precision) throws -> (logits: [[Float]], probabilities: [[Float]]) {
            let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                                exaggeration: t.tiny.float("exaggeration"))
            let decoder = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text, cfgWeight: t.tiny.float("cfg_weight"),
                                        maxNewTokens: forced.count, observedHeads: [head], kvCachePrecision: precision)
            var logits = [decoder.logits], probabilities = [decoder.attentionProbabilities[head] ?? []]
            for token in forced.prefix(19) {
                try decoder.feed(token)
                logits.append(decoder.logits)
                probabilities.append(decoder.attentionProbabilities[head] ?? [])
            }
            return (logits, probabilities)
        }
        let reference = try run(.f32), reduced = try run(precision)
        var worst: Float = 0, worstProbability: Float = 0
        for (step, (a, b)) in zip(reduced.logits, reference.logits).enumerated() {
            worst = max(worst, expectParity(a, b, tolerance: tolerance, "t3 \(precision) KV cache vs f32 cache, CFG logits step \(step)").relative)
        }
        for (a, b) in zip(reduced.probabilities, reference.probabilities) {
            #expect(a.count == b.count && !a.isEmpty)
            worstProbability = max(worstProbability, zip(a, b).map { abs($0 - $1) }.max() ?? 0)
        }
        print("t3 \(precision) KV cache vs f32 cache: worst CFG-logits relative error over 20 steps \(worst), attention probabilities max |Δ| \(worstProbability)")
        #expect(worst > 0, "the \(precision) cache was used")
        #expect(worstProbability <= 1e-3)
    }

    @Test func samplingMatchesUpstreamWithInjectedUniforms() throws {
        let t = try TinyT3()
        for testCase in t.fixture.cases where testCase.name.hasPrefix("sample_") {
            let parameters = T3SamplingParameters(
                temperature: testCase.float("temperature"), cfgWeight: testCase.float("cfg_weight"),
                exaggeration: testCase.float("exaggeration"), repetitionPenalty: testCase.float("repetition_penalty"),
                minP: testCase.float("min_p"), topP: testCase.float("top_p"), maxNewTokens: testCase.int("max_new_tokens"))
            let uniforms = try t.fixture.tensor(testCase, "uniforms")
            let replay = uniforms.withUnsafeRawBytes { Array($0.bindMemory(to: Double.self)) }
            let iterator = try T3TokenIterator(model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                               textTokens: try t.text, parameters: parameters, uniforms: ReplayedUniforms(replay))
            let expectedProbs = try t.fixture.tensor(testCase, "probs")
            let vocabulary = expectedProbs.shape[1]
            let expectedRows = expectedProbs.scalars()
            var worst: Float = 0
            var step = 0
            while let _ = iterator.next() {
                let reference = Array(expectedRows[(step * vocabulary)..<((step + 1) * vocabulary)])
                for (a, b) in zip(iterator.lastDistribution, reference) { worst = max(worst, abs(a - b)) }
                // Support (which ids survive the filters) must agree exactly.
                #expect(iterator.lastDistribution.map { $0 > 0 } == reference.map { $0 > 0 }, "\(testCase) step \(step)")
                step += 1
            }
            print("t3 sampling \(testCase): max |Δp| \(worst) over \(step) steps")
            #expect(worst <= 1e-6, "\(testCase): distributions differ by \(worst)")
            #expect(iterator.tokens == (try t.ints(testCase, "tokens")), "\(testCase)")
            #expect(iterator.speechTokens == (try t.ints(testCase, "post")), "\(testCase)")
        }
    }

    /// The processor chain alone, on the very logits upstream's chain received.
    @Test func processorChainMatchesUpstreamOnIdenticalLogits() throws {
        let t = try TinyT3()
        for testCase in t.fixture.cases where testCase.name.hasPrefix("sample_") {
            let parameters = T3SamplingParameters(
                temperature: testCase.float("temperature"), cfgWeight: testCase.float("cfg_weight"),
                repetitionPenalty: testCase.float("repetition_penalty"), minP: testCase.float("min_p"), topP: testCase.float("top_p"))
            let logits = try t.fixture.tensor(testCase, "logits"), probs = try t.fixture.tensor(testCase, "probs")
            let tokens = try t.ints(testCase, "tokens")
            let v = logits.shape[1], l = logits.scalars(), p = probs.scalars()
            var worst: Float = 0
            for step in 0..<logits.shape[0] {
                let history = [t.config.startSpeechToken] + tokens[..<step]
                let ours = T3Sampler.distribution(Array(l[(step * v)..<((step + 1) * v)]), history: history, parameters: parameters)
                for (a, b) in zip(ours, p[(step * v)..<((step + 1) * v)]) { worst = max(worst, abs(a - b)) }
            }
            print("t3 processor chain \(testCase): max |Δp| \(worst)")
            #expect(worst <= 1e-6)
        }
    }

    @Test func iteratorStopsAndCancels() throws {
        let t = try TinyT3()
        let cancellation = T3Cancellation()
        var attentionSteps: [Int] = []
        let iterator = try T3TokenIterator(
            model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt, textTokens: try t.text,
            parameters: T3SamplingParameters(maxNewTokens: 30), uniforms: SplitMixUniforms(seed: 7),
            observedHeads: [T3AttentionHead(layer: 0, head: 1)], cancellation: cancellation,
            onAttention: { step, probabilities in
                attentionSteps.append(step)
                #expect(probabilities.count == 1)
            })
        #expect(iterator.next() != nil)
        #expect(iterator.next() != nil)
        cancellation.cancel()
        #expect(iterator.next() == nil)
        #expect(iterator.tokens.count == 2)
        #expect(attentionSteps == [0, 1, 2])

        let short = try T3TokenIterator(model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                        textTokens: try t.text, parameters: T3SamplingParameters(maxNewTokens: 5))
        #expect(Array(short).count <= 5)
        #expect(short.finished)
    }

    @Test func postprocessingFollowsDropInvalidTokens() {
        let p = { T3Sampler.postprocess($0, startSpeech: 6561, stopSpeech: 6562) }
        #expect(p([1, 2, 6562, 3]) == [1, 2])
        #expect(p([5, 6561, 7, 8000, 9, 6562, 4]) == [7, 9])
        #expect(p([6562, 6561, 1]) == [])
        #expect(p([1, 6563, 2]) == [1, 2])
    }

    @Test func processorsFollowTransformers() {
        var l: [Float] = [2, -1, 0.5, 3]
        T3Sampler.applyRepetitionPenalty(&l, history: [0, 1, 1], penalty: 2)
        #expect(l == [1, -2, 0.5, 3])
        var k: [Float] = [1, 3, 3, 2]
        T3Sampler.applyTopK(&k, topK: 2)
        #expect(k == [-.infinity, 3, 3, -.infinity])
        var m: [Float] = [0, 10, 9, -10]
        T3Sampler.applyMinP(&m, minP: 0.5)
        #expect(m == [-.infinity, 10, -.infinity, -.infinity])
        #expect(T3Sampler.draw([0, 0.5, 0, 0.5], uniform: 0) == 1)
        #expect(T3Sampler.draw([0, 0.5, 0, 0.5], uniform: 0.75) == 3)
    }

    @Test func invalidInputsThrowTypedErrors() throws {
        let t = try TinyT3()
        #expect(throws: T3Error.speakerEmbeddingSize(expected: 32, actual: 31)) {
            try t.model.conditioning(speakerEmbedding: [Float](repeating: 0, count: 31), promptTokens: [], exaggeration: 0.5)
        }
        #expect(throws: T3Error.textTooLong(count: 63, limit: 62)) {
            try t.model.wrapText([Int](repeating: 1, count: 63))
        }
        #expect(throws: T3Error.emptyText) { try t.model.wrapText([]) }
        #expect(throws: T3Error.tokenOutOfRange(kind: "text", token: 260, vocabularySize: 260)) { try t.model.wrapText([260]) }
        for bad in [T3SamplingParameters(temperature: 0), T3SamplingParameters(temperature: -1),
                    T3SamplingParameters(topP: 0), T3SamplingParameters(topP: 1.5), T3SamplingParameters(minP: -0.1),
                    T3SamplingParameters(repetitionPenalty: 0), T3SamplingParameters(cfgWeight: -1),
                    T3SamplingParameters(topK: 0), T3SamplingParameters(maxNewTokens: 0)] {
            #expect(throws: T3Error.self) { try bad.validate() }
        }
        #expect(throws: Never.self) { try T3SamplingParameters().validate() }
        // The real checkpoint's limit: 2048 text tokens.
        #expect(T3Config.english.textPositions == 2050)

        // Missing and wrong-shape weights surface as TensorErrors naming the tensor.
        var tensors: [String: Tensor] = [:]
        for key in t.fixture.file.names where key.hasPrefix("tiny.w.") {
            tensors[String(key.dropFirst("tiny.w.".count))] = try t.fixture.file.tensor(key)
        }
        var missing = tensors
        missing["tfmr.layers.1.mlp.up_proj.weight"] = nil
        #expect(throws: TensorError.missingTensor(path: "m", tensor: "tfmr.layers.1.mlp.up_proj.weight")) {
            try T3(weights: InMemoryWeights(missing, source: "m"), config: t.config)
        }
        var wrong = tensors
        wrong["speech_head.weight"] = Tensor(zeros: [10, 64])
        #expect(throws: TensorError.shapeMismatch(tensor: "m: speech_head.weight", expected: [200, 64], actual: [10, 64])) {
            try T3(weights: InMemoryWeights(wrong, source: "m"), config: t.config)
        }
        // Unused tensors may be absent.
        var trimmed = tensors
        trimmed["tfmr.embed_tokens.weight"] = nil
        trimmed["text_head.weight"] = nil
        _ = try T3(weights: InMemoryWeights(trimmed), config: t.config)
    }
}
