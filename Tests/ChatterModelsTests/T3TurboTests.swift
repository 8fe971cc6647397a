import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// The tiny upstream Turbo T3 (GPT-2 backbone) of `tools/fixtures/fixturegen/t3_turbo.py`.
struct TinyTurboT3 {
    let fixture: Fixture
    let tiny: Fixture.Case
    let config: T3Config
    let weights: RecordingWeights
    let model: T3

    init() throws {
        fixture = try Fixture("t3/turbo_tiny")
        tiny = fixture.cases.first { $0.name == "tiny" }!
        config = T3Config(backbone: .gpt2(maxPositions: tiny.int("positions")), hiddenSize: tiny.int("hidden"),
                          layers: tiny.int("layers"), heads: tiny.int("heads"), headDim: tiny.int("head_dim"),
                          intermediateSize: tiny.int("intermediate"), textVocabularySize: tiny.int("text_vocab"),
                          speechVocabularySize: tiny.int("speech_vocab"), startSpeechToken: tiny.int("start_speech"),
                          stopSpeechToken: tiny.int("stop_speech"), maxTextTokens: 1024,
                          speakerEmbeddingSize: tiny.int("speaker_size"), learnedTokenPositions: false,
                          perceiverResampler: false, emotionConditioning: false, speechPromptLength: tiny.int("prompt_length"))
        weights = RecordingWeights(fixture.file.scoped("tiny.w."))
        model = try T3(weights: weights, config: config)
    }

    func ints(_ testCase: Fixture.Case, _ role: String) throws -> [Int] {
        try fixture.tensor(testCase, role).integers().map { Int($0) }
    }
    var speaker: [Float] { get throws { try fixture.tensor(tiny, "speaker_emb").scalars() } }
    var prompt: [Int] { get throws { try ints(tiny, "prompt_tokens") } }
    var text: [Int] { get throws { try ints(tiny, "text_tokens") } }

    /// `model`'s logits at the end of the prefill and after each of the fixture's forced tokens
    /// (the teacher-forced run the fixture's "logits" record).
    func teacherForcedLogits(_ model: T3, kvCachePrecision: KVCache.Precision = .f32) throws -> [Float] {
        let forced = try ints(tiny, "forced_tokens")
        let cond = try model.conditioning(speakerEmbedding: try speaker, promptTokens: try prompt, exaggeration: 0)
        let decoder = try T3Decoder(model: model, conditioning: cond, textTokens: try text, cfgWeight: 0, maxNewTokens: forced.count,
                                    kvCachePrecision: kvCachePrecision)
        var logits = decoder.logits
        for token in forced {
            try decoder.feed(token)
            logits += decoder.logits
        }
        return logits
    }

    /// The fixture's weights by upstream name, optionally with rank ≥ 2 tensors converted.
    func tensors(_ transform: (String, Tensor) -> Tensor = { $1 }) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for key in fixture.file.names where key.hasPrefix("tiny.w.") {
            let name = String(key.dropFirst("tiny.w.".count))
            result[name] = transform(name, try fixture.file.tensor(key))
        }
        return result
    }
}

@Suite struct T3TurboTests {
    @Test func prefillMatchesUpstream() throws {
        let t = try TinyTurboT3()
        #expect(t.model.procedure is T3TurboProcedure && t.model.gpt2Blocks.count == 2 && t.model.llamaBlocks.isEmpty)
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0.5)
        #expect(cond.shape == [t.config.conditioningLength(promptTokens: 12), 32])
        expectParity(cond.unsqueezed(0), try t.fixture.tensor(t.tiny, "cond"), tolerance: 1e-5, "t3 turbo conditioning")
        // Turbo ignores cfg_weight (one row) and adds no start/stop text tokens.
        let decoder = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text, cfgWeight: 0.5, maxNewTokens: 20)
        #expect(decoder.batch == 1)
        #expect(try t.model.wrapText(try t.text) == (try t.text))
        expectParity(decoder.prefillEmbeddings, try t.fixture.tensor(t.tiny, "prefill_embeds"), tolerance: 1e-6, "t3 turbo prefill embeddings")
        expectParity(decoder.prefillHidden, try t.fixture.tensor(t.tiny, "prefill_hidden"), tolerance: 1e-4, "t3 turbo prefill hidden")
        expectParity(decoder.rawLogits, try t.fixture.tensor(t.tiny, "prefill_logits"), tolerance: 1e-4, "t3 turbo prefill logits")
        let read = t.weights.read.withLock { $0 }
        #expect(!read.contains("tfmr.wte.weight") && !read.contains("text_head.weight"))
    }

    @Test func teacherForcedLogitsMatchUpstream() throws {
        let t = try TinyTurboT3()
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0)
        let forced = try t.ints(t.tiny, "forced_tokens")
        let decoder = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text, cfgWeight: 0, maxNewTokens: forced.count)
        var logits: [Float] = []
        for step in 0...forced.count {
            logits += decoder.logits
            if step < forced.count { try decoder.feed(forced[step]) }
        }
        let expected = try t.fixture.tensor(t.tiny, "logits")
        expectParity(Tensor(shape: expected.shape, scalars: logits), expected, tolerance: 1e-4, "t3 turbo teacher-forced logits")
        #expect(throws: T3Error.self) { try decoder.feed(0) }
    }

    /// Weights in the converter's layout (Conv1D transposed to [out, in], marked in the metadata)
    /// give the same logits as the upstream layout, and are used in place (bf16 too).
    @Test func convertedConv1DLayoutLoadsInPlace() throws {
        let t = try TinyTurboT3()
        let transposed = try t.tensors { name, tensor in
            GPT2Conv1DLayout.isConv1DWeight(name) ? tensor.converted(to: .f32).transposed().copy() : tensor
        }
        let marked = InMemoryWeights(transposed, source: "converted",
                                     metadata: [GPT2Conv1DLayout.metadataKey: GPT2Conv1DLayout.transposedValue])
        let model = try T3(weights: marked, config: t.config)
        let storedQKV = try marked.tensor("tfmr.h.0.attn.c_attn.weight")
        #expect(model.gpt2Blocks[0].qProj.weight.storage === storedQKV.storage, "the [out, in] weight is used in place")
        let logits = try t.teacherForcedLogits(model)
        expectParity(logits, try t.fixture.tensor(t.tiny, "logits").scalars(), tolerance: 1e-4, "t3 turbo converted layout logits")
        // Without the marker a square [in, out] weight cannot be told apart: the shape check catches the rest.
        #expect(throws: TensorError.self) { try T3(weights: InMemoryWeights(transposed, source: "unmarked"), config: t.config) }

        let bf16 = try T3(weights: InMemoryWeights(try t.tensors { $1.rank >= 2 ? $1.converted(to: .bf16) : $1 }), config: t.config)
        #expect(bf16.gpt2Blocks[1].fcProj.weight.dtype == .bf16 && bf16.speechHead.weight.dtype == .bf16)
        // Embedding tables stay bf16 too (rows widened as they are read).
        #expect(bf16.textEmbedding.tensor.dtype == .bf16 && bf16.speechEmbedding.tensor.dtype == .bf16)
        let reduced = try T3Decoder(model: bf16, conditioning: try bf16.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0),
                                    textTokens: try t.text, cfgWeight: 0, maxNewTokens: 1)
        let error = expectParity(reduced.logits, Array(logits[0..<t.config.speechVocabularySize]), tolerance: 2e-2, "t3 turbo bf16 vs f32 prefill logits")
        #expect(error.relative > 0)
    }

    /// T3 stored at reduced precision as `chatter-convert --dtype t3=…` writes it (converted layout,
    /// `T3WeightPrecision`): decode matrices read in place (q8_0 and f16 through their GEMV kernels,
    /// the prefill through the widened sgemm path), teacher-forced logits of every step within a stated
    /// tolerance of the f32 model's (max |err| / max |f32|): f16 2e-3, bf16 2e-2, q8_0 3e-2.
    /// The fixture stores f16 values, which f16 storage would keep exactly, so the matrices are first
    /// scaled by 1 + U(−1e-3, 1e-3) in f32: every precision then has something to round.
    @Test(arguments: [(DType.f16, Float(2e-3)), (.bf16, 2e-2), (.q8_0, 3e-2)])
    func reducedPrecisionLogitsStayNearF32(dtype: DType, tolerance: Float) throws {
        let t = try TinyTurboT3()
        var generator = SplitMix64(seed: 14)
        let converted = try t.tensors { name, tensor in
            guard tensor.rank >= 2 else { return tensor }
            let layout = GPT2Conv1DLayout.isConv1DWeight(name) ? tensor.converted(to: .f32).transposed().copy() : tensor
            return Tensor(shape: layout.shape, scalars: layout.scalars().map { $0 * (1 + 1e-3 * generator.nextFloat()) })
        }
        let metadata = [GPT2Conv1DLayout.metadataKey: GPT2Conv1DLayout.transposedValue]
        func logits(_ weights: [String: Tensor]) throws -> (model: T3, logits: [Float]) {
            let model = try T3(weights: InMemoryWeights(weights, metadata: metadata), config: t.config)
            return (model, try t.teacherForcedLogits(model))
        }
        let reference = try logits(converted).logits
        let stored = converted.reduce(into: [String: Tensor]()) { result, entry in
            let target = T3WeightPrecision.storedDType(entry.key, shape: entry.value.shape, target: dtype)
            result[entry.key] = entry.value.dtype.isFloatingPoint && entry.value.dtype != target ? entry.value.converted(to: target) : entry.value
        }
        let (model, reduced) = try logits(stored)
        #expect(model.gpt2Blocks[0].qProj.weight.dtype == dtype && model.gpt2Blocks[1].outProj.weight.dtype == dtype
                && model.speechHead.weight.dtype == dtype, "decode matrices are used as stored")
        // q8_0 leaves embedding tables in f32; bf16 and f16 tables are read in place.
        #expect(model.textEmbedding.tensor.dtype == (dtype == .q8_0 ? .f32 : dtype))
        let error = expectParity(reduced, reference, tolerance: tolerance, "t3 turbo \(dtype) vs f32 teacher-forced logits (\(reference.count / t.config.speechVocabularySize) steps)")
        #expect(error.relative > 0, "the reduced weights were used")
    }

    /// A 16-bit KV cache keeps the teacher-forced logits near those of the f32 cache (max |Δ| / max |f32|
    /// over the prefill and every forced step; measured 7.1e-5 for f16 and 9.3e-4 for bf16, the
    /// tolerances leave 5–7× that), from a cold prefill and from the voice's conditioning prefix (its
    /// f32 keys rounded when copied in). The tokens sampled with the same uniforms (as many as the
    /// tiny model's 64 positions leave, 35) are counted, not asserted: on this tiny random model one rounding can move a draw.
    @Test(arguments: [(KVCache.Precision.f16, Float(5e-4)), (.bf16, 5e-3)])
    func reducedPrecisionKVCacheLogitsStayNearF32Cache(precision: KVCache.Precision, tolerance: Float) throws {
        let t = try TinyTurboT3()
        let reference = try t.teacherForcedLogits(t.model)
        let reduced = try t.teacherForcedLogits(t.model, kvCachePrecision: precision)
        let steps = reference.count / t.config.speechVocabularySize
        let error = expectParity(reduced, reference, tolerance: tolerance, "t3 turbo \(precision) KV cache vs f32 cache, teacher-forced logits (\(steps) steps)")
        #expect(error.relative > 0, "the \(precision) cache was used")

        let inputs = T3ConditioningInputs(config: t.config, speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0)
        let prefix = try T3PrefixState(model: t.model, inputs: inputs)
        let warm = try T3Decoder(model: t.model, prefix: prefix, textTokens: try t.text, cfgWeight: 0, maxNewTokens: 4, kvCachePrecision: precision)
        expectParity(warm.logits, Array(reference.prefix(t.config.speechVocabularySize)), tolerance: tolerance,
                     "t3 turbo \(precision) KV cache from a prefix vs f32 cache, prefill logits")

        var parameters = T3SamplingParameters.turbo
        parameters.maxNewTokens = t.model.maxSequenceLength - warm.prefillLength   // all the positions the tiny model has left
        func sample(_ precision: KVCache.Precision) throws -> [Int] {
            let iterator = try T3TokenIterator(model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                               textTokens: try t.text, parameters: parameters, uniforms: SplitMixUniforms(seed: 0x5eed),
                                               kvCachePrecision: precision)
            return Array(iterator)
        }
        let f32Tokens = try sample(.f32), reducedTokens = try sample(precision)
        let identical = zip(f32Tokens, reducedTokens).filter { $0 == $1 }.count
        let prefixLength = zip(f32Tokens, reducedTokens).prefix { $0 == $1 }.count
        print("t3 turbo \(precision) KV cache: sampled tokens identical to the f32 cache's \(identical) of \(min(f32Tokens.count, reducedTokens.count)) "
              + "(common prefix \(prefixLength); f32 drew \(f32Tokens.count), \(precision) \(reducedTokens.count))")
    }

    @Test func samplingMatchesUpstreamWithInjectedUniforms() throws {
        let t = try TinyTurboT3()
        var sawLeadingEOS = false, sawStartToken = false
        for testCase in t.fixture.cases where testCase.name.hasPrefix("sample_") {
            let parameters = T3SamplingParameters(
                temperature: testCase.float("temperature"), cfgWeight: 0, exaggeration: 0,
                repetitionPenalty: testCase.float("repetition_penalty"), minP: 0, topP: testCase.float("top_p"),
                topK: testCase.int("top_k"), maxNewTokens: testCase.int("max_new_tokens"))
            let uniforms = try t.fixture.tensor(testCase, "uniforms")
            let replay = uniforms.withUnsafeRawBytes { Array($0.bindMemory(to: Double.self)) }
            let iterator = try T3TokenIterator(model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                               textTokens: try t.text, parameters: parameters, uniforms: ReplayedUniforms(replay))
            let expectedProbs = try t.fixture.tensor(testCase, "probs")
            let vocabulary = expectedProbs.shape[1], expectedRows = expectedProbs.scalars()
            var worst: Float = 0, step = 0
            while let _ = iterator.next() {
                let reference = Array(expectedRows[(step * vocabulary)..<((step + 1) * vocabulary)])
                for (a, b) in zip(iterator.lastDistribution, reference) { worst = max(worst, abs(a - b)) }
                #expect(iterator.lastDistribution.map { $0 > 0 } == reference.map { $0 > 0 }, "\(testCase) step \(step)")
                step += 1
            }
            let tokens = try t.ints(testCase, "tokens")
            print("t3 turbo sampling \(testCase): max |Δp| \(worst) over \(step) steps, tokens \(tokens)")
            #expect(worst <= 1e-6, "\(testCase): distributions differ by \(worst)")
            #expect(iterator.tokens == tokens, "\(testCase)")
            #expect(iterator.speechTokens == (try t.ints(testCase, "post")), "\(testCase)")
            sawLeadingEOS = sawLeadingEOS || (tokens.first == t.config.stopSpeechToken && tokens.count > 1)
            sawStartToken = sawStartToken || tokens.contains(t.config.startSpeechToken)
        }
        // The fixture exercises the rule that the prefill's draw is never taken as EOS.
        #expect(sawLeadingEOS)
    }

    /// `inference_turbo`'s processor chain alone, on the very logits upstream's chain received.
    @Test func processorChainMatchesUpstreamOnIdenticalLogits() throws {
        let t = try TinyTurboT3()
        for testCase in t.fixture.cases where testCase.name.hasPrefix("sample_") {
            let parameters = T3SamplingParameters(temperature: testCase.float("temperature"), repetitionPenalty: testCase.float("repetition_penalty"),
                                                  minP: 0, topP: testCase.float("top_p"), topK: testCase.int("top_k"))
            let logits = try t.fixture.tensor(testCase, "logits"), probs = try t.fixture.tensor(testCase, "probs")
            let tokens = try t.ints(testCase, "tokens")
            let v = logits.shape[1], l = logits.scalars(), p = probs.scalars()
            var worst: Float = 0
            for step in 0..<logits.shape[0] {
                let history = step == 0 ? [t.config.startSpeechToken] : Array(tokens[..<step])
                let ours = T3Sampler.turboDistribution(Array(l[(step * v)..<((step + 1) * v)]), history: history, parameters: parameters)
                for (a, b) in zip(ours, p[(step * v)..<((step + 1) * v)]) { worst = max(worst, abs(a - b)) }
            }
            print("t3 turbo processor chain \(testCase): max |Δp| \(worst)")
            #expect(worst <= 1e-6)
        }
    }

    @Test func turboRulesAndTypedErrors() throws {
        let t = try TinyTurboT3()
        #expect(T3Sampler.turboPostprocess([5, 63, 7, 62, 63], startSpeech: 62, stopSpeech: 63) == [5, 7])
        #expect(T3Sampler.turboPostprocess([63], startSpeech: 62, stopSpeech: 63) == [])
        #expect(T3Sampler.turboPostprocess([1, 2], startSpeech: 62, stopSpeech: 63) == [1, 2])
        // Temperature, then top-k, then top-p, then the penalty on the survivors.
        let d = T3Sampler.turboDistribution([4, 3, 2, 1], history: [0], parameters: T3SamplingParameters(
            temperature: 1, repetitionPenalty: 2, topP: 1, topK: 2))
        #expect(d[2] == 0 && d[3] == 0 && abs(d[0] - 1 / (1 + Float.exp(1))) < 1e-6)

        // 64 positions: prefill 29 + 36 new tokens is one too many.
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0)
        #expect(throws: T3Error.sequenceTooLong(prefill: 29, maxNewTokens: 36, limit: 64)) {
            try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text, cfgWeight: 0, maxNewTokens: 36)
        }
        _ = try T3Decoder(model: t.model, conditioning: cond, textTokens: try t.text, cfgWeight: 0, maxNewTokens: 35)
        #expect(throws: T3Error.textTooLong(count: 1025, limit: 1024)) { try t.model.wrapText([Int](repeating: 1, count: 1025)) }
        #expect(throws: T3Error.tokenOutOfRange(kind: "text", token: 48, vocabularySize: 48)) { try t.model.wrapText([48]) }
        #expect(throws: T3Error.speakerEmbeddingSize(expected: 32, actual: 256)) {
            try t.model.conditioning(speakerEmbedding: [Float](repeating: 0, count: 256), promptTokens: [], exaggeration: 0)
        }
        #expect(T3Config.turbo.conditioningLength(promptTokens: 375) == 376)
        // Sizes read back from the weight shapes (the prompt length is the family's, not in the weights).
        var inferred = try T3Config.inferred(from: t.fixture.file.scoped("tiny.w."), heads: 2, startSpeechToken: 62, stopSpeechToken: 63)
        #expect(inferred.speechPromptLength == 375)
        inferred.speechPromptLength = t.config.speechPromptLength
        #expect(inferred == t.config)
        #expect(throws: Never.self) { try T3SamplingParameters.turbo.validate() }

        var missing = try t.tensors()
        missing["tfmr.wpe.weight"] = nil
        #expect(throws: TensorError.missingTensor(path: "m", tensor: "tfmr.wpe.weight")) {
            try T3(weights: InMemoryWeights(missing, source: "m"), config: t.config)
        }
        var noBias = try t.tensors()
        noBias["speech_head.bias"] = nil
        #expect(throws: TensorError.missingTensor(path: "m", tensor: "speech_head.bias")) {
            try T3(weights: InMemoryWeights(noBias, source: "m"), config: t.config)
        }
    }
}
