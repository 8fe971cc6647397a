import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// A decoder started from a cached conditioning prefix (`T3PrefixState`) against the full prefill
/// of the same conditioning, on the tiny Llama (CFG, two rows) and Turbo (GPT-2, one row) models.
///
/// Only the order of summation differs (the conditioning rows run as their own GEMMs, one row
/// instead of the batch), so logits agree to float rounding: the tolerance is 1e-5 relative
/// (max |Δ| / max |logit|), and the errors seen are printed (below 1e-6 on these models).
@Suite struct T3PrefixTests {
    static let tolerance: Float = 1e-5
    static let steps = 20

    /// Teacher-forced tokens, valid in any speech vocabulary of the tiny models (below start/stop).
    static func forced(_ config: T3Config) -> [Int] {
        (0..<steps).map { ($0 * 7 + 3) % (config.startSpeechToken - 1) }
    }

    /// Prefill + `steps` fed tokens with and without the prefix: raw logits (every row), CFG logits and
    /// the observed attention rows must agree at every step.
    static func compare(model: T3, conditioning: Tensor, text: [Int], cfgWeight: Float, observe: [T3AttentionHead],
                        label: String) throws {
        let forced = forced(model.config)
        let full = try T3Decoder(model: model, conditioning: conditioning, textTokens: text, cfgWeight: cfgWeight,
                                 maxNewTokens: forced.count + 1, observedHeads: observe)
        let prefix = try T3PrefixState(model: model, conditioning: conditioning)
        #expect(prefix.conditioningLength == conditioning.shape[0] && prefix.rows == 1)
        let cached = try T3Decoder(model: model, prefix: prefix, textTokens: text, cfgWeight: cfgWeight,
                                   maxNewTokens: forced.count + 1, observedHeads: observe)
        #expect(cached.batch == full.batch && cached.prefillLength == full.prefillLength)
        #expect(cached.prefix != nil && full.prefix == nil)
        // The whole prefill is still reported: the conditioning rows come from the prefix.
        let embeddings = ParityError(cached.prefillEmbeddings.scalars(), full.prefillEmbeddings.scalars())
        #expect(cached.prefillEmbeddings.shape == full.prefillEmbeddings.shape && embeddings.maxAbsoluteError == 0)
        expectParity(cached.prefillHidden, full.prefillHidden, tolerance: tolerance, "\(label) prefill hidden")
        var worstRaw: Float = 0, worstAbs: Float = 0, worstAttention: Float = 0
        for step in 0...forced.count {
            let raw = expectParity(cached.rawLogits, full.rawLogits, tolerance: tolerance, "\(label) raw logits, step \(step)")
            let combined = expectParity(cached.logits, full.logits, tolerance: tolerance, "\(label) logits, step \(step)")
            worstRaw = max(worstRaw, raw.relative, combined.relative)
            worstAbs = max(worstAbs, raw.maxAbsoluteError, combined.maxAbsoluteError)
            #expect(Set(cached.attentionProbabilities.keys) == Set(observe))
            for head in observe {
                let a = cached.attentionProbabilities[head] ?? [], b = full.attentionProbabilities[head] ?? []
                // The last query's row over every cached position, prefix positions included.
                #expect(a.count == full.prefillLength + step && b.count == a.count, "\(label) \(head) step \(step)")
                if a.count == b.count { worstAttention = max(worstAttention, ParityError(a, b).maxAbsoluteError) }
            }
            if step < forced.count {
                try full.feed(forced[step])
                try cached.feed(forced[step])
            }
        }
        print("\(label): prefix vs full prefill over prefill + \(forced.count) steps: worst relative \(worstRaw), max |Δlogit| \(worstAbs), max |Δattention| \(worstAttention) (tolerance \(tolerance) relative)")
        #expect(worstAttention <= 1e-6)
    }

    @Test func llamaCFGPrefixMatchesFullPrefill() throws {
        let t = try TinyT3()
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                            exaggeration: t.tiny.float("exaggeration"))
        let observe = (0..<t.config.layers).flatMap { l in (0..<t.config.heads).map { T3AttentionHead(layer: l, head: $0) } }
        try Self.compare(model: t.model, conditioning: cond, text: try t.text, cfgWeight: t.tiny.float("cfg_weight"),
                         observe: observe, label: "t3 llama CFG")
        // Without guidance (one row) the same prefix serves too.
        try Self.compare(model: t.model, conditioning: cond, text: try t.text, cfgWeight: 0, observe: [], label: "t3 llama no CFG")
    }

    @Test func turboPrefixMatchesFullPrefill() throws {
        let t = try TinyTurboT3()
        let cond = try t.model.conditioning(speakerEmbedding: try t.speaker, promptTokens: try t.prompt, exaggeration: 0)
        try Self.compare(model: t.model, conditioning: cond, text: try t.text, cfgWeight: 0, observe: [], label: "t3 turbo")
    }

    /// The same seeds draw the same tokens, prefix or not (and one prefix serves many texts).
    @Test func sampledTokensAreIdenticalFromAPrefix() throws {
        let llama = try TinyT3(), turbo = try TinyTurboT3()
        let cases: [(T3, [Float], [Int], [Int], T3SamplingParameters, String)] = [
            (llama.model, try llama.speaker, try llama.prompt, try llama.text,
             T3SamplingParameters(cfgWeight: 0.5, exaggeration: llama.tiny.float("exaggeration"), maxNewTokens: 40), "llama"),
            (turbo.model, try turbo.speaker, try turbo.prompt, try turbo.text,
             T3SamplingParameters(temperature: 0.8, cfgWeight: 0, exaggeration: 0, repetitionPenalty: 1.2, minP: 0, topP: 0.95,
                                  topK: 50, maxNewTokens: 30), "turbo"),
        ]
        for (model, speaker, prompt, text, parameters, label) in cases {
            let inputs = T3ConditioningInputs(config: model.config, speakerEmbedding: speaker, promptTokens: prompt,
                                              exaggeration: parameters.exaggeration)
            let prefix = try T3PrefixState(model: model, inputs: inputs)
            for seed in [UInt64(1), 2, 3] {
                for text in [text, Array(text.prefix(3))] {
                    let full = try T3TokenIterator(model: model, speakerEmbedding: speaker, promptTokens: prompt, textTokens: text,
                                                   parameters: parameters, uniforms: SplitMixUniforms(seed: seed))
                    let cached = try T3TokenIterator(model: model, speakerEmbedding: speaker, promptTokens: prompt, textTokens: text,
                                                     parameters: parameters, prefix: prefix, uniforms: SplitMixUniforms(seed: seed))
                    let a = Array(full), b = Array(cached)
                    #expect(!a.isEmpty)
                    #expect(a == b, "\(label) seed \(seed): \(a) vs \(b)")
                }
            }
        }
    }

    /// A prefix from another model, another conditioning length, another voice or exaggeration is
    /// refused with a typed error.
    @Test func mismatchedPrefixesAreRefused() throws {
        let llama = try TinyT3(), turbo = try TinyTurboT3()
        func refuses(_ label: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("\(label): accepted")
            } catch let T3Error.prefixMismatch(reason) {
                print("\(label): refused (\(reason))")
            } catch {
                Issue.record("\(label): \(error)")
            }
        }
        let exaggeration = llama.tiny.float("exaggeration")
        let llamaInputs = T3ConditioningInputs(config: llama.config, speakerEmbedding: try llama.speaker,
                                               promptTokens: try llama.prompt, exaggeration: exaggeration)
        let llamaPrefix = try T3PrefixState(model: llama.model, inputs: llamaInputs)
        let turboInputs = T3ConditioningInputs(config: turbo.config, speakerEmbedding: try turbo.speaker,
                                               promptTokens: try turbo.prompt, exaggeration: 0)
        let turboPrefix = try T3PrefixState(model: turbo.model, inputs: turboInputs)
        #expect(turboPrefix.byteCount > 0 && turboInputs.exaggeration == nil && llamaInputs.exaggeration == exaggeration)

        // Another model: another family, or the same weights loaded again (another instance).
        refuses("llama prefix on turbo") {
            _ = try T3Decoder(model: turbo.model, prefix: llamaPrefix, textTokens: try turbo.text, cfgWeight: 0, maxNewTokens: 5)
        }
        refuses("turbo prefix on llama") {
            _ = try T3Decoder(model: llama.model, prefix: turboPrefix, textTokens: try llama.text, cfgWeight: 0.5, maxNewTokens: 5)
        }
        let twin = try TinyT3()
        refuses("prefix of another instance") {
            _ = try T3Decoder(model: twin.model, prefix: llamaPrefix, textTokens: try llama.text, cfgWeight: 0.5, maxNewTokens: 5)
        }
        var turboParameters = T3SamplingParameters.turbo
        turboParameters.maxNewTokens = 10
        // Another conditioning length (Turbo: one position per prompt token).
        let shorter = Array(try turbo.prompt.dropLast(2))
        refuses("turbo prefix for a shorter prompt") {
            _ = try T3TokenIterator(model: turbo.model, speakerEmbedding: try turbo.speaker, promptTokens: shorter,
                                    textTokens: try turbo.text, parameters: turboParameters, prefix: turboPrefix)
        }
        // Same length, another voice.
        var otherSpeaker = try llama.speaker
        otherSpeaker[0] += 1
        refuses("llama prefix for another speaker") {
            _ = try T3TokenIterator(model: llama.model, speakerEmbedding: otherSpeaker, promptTokens: try llama.prompt,
                                    textTokens: try llama.text, parameters: T3SamplingParameters(exaggeration: exaggeration), prefix: llamaPrefix)
        }
        // The emotion projection makes the exaggeration part of the Llama conditioning, not of Turbo's.
        refuses("llama prefix for another exaggeration") {
            _ = try T3TokenIterator(model: llama.model, speakerEmbedding: try llama.speaker, promptTokens: try llama.prompt,
                                    textTokens: try llama.text, parameters: T3SamplingParameters(exaggeration: exaggeration + 0.25),
                                    prefix: llamaPrefix)
        }
        turboParameters.exaggeration = 0.9
        _ = try T3TokenIterator(model: turbo.model, speakerEmbedding: try turbo.speaker, promptTokens: try turbo.prompt,
                                textTokens: try turbo.text, parameters: turboParameters, prefix: turboPrefix)
        // A prefix from a bare tensor carries no inputs to check against.
        let bare = try T3PrefixState(model: llama.model, conditioning: try llama.model.conditioning(
            speakerEmbedding: try llama.speaker, promptTokens: try llama.prompt, exaggeration: exaggeration))
        refuses("bare prefix in an iterator") {
            _ = try T3TokenIterator(model: llama.model, speakerEmbedding: try llama.speaker, promptTokens: try llama.prompt,
                                    textTokens: try llama.text, parameters: T3SamplingParameters(exaggeration: exaggeration), prefix: bare)
        }
        refuses("conditioning of the wrong width") {
            _ = try T3PrefixState(model: llama.model, conditioning: Tensor(zeros: [4, llama.config.hiddenSize + 1]))
        }
        refuses("conditioning filling every position") {
            _ = try T3PrefixState(model: turbo.model, conditioning: Tensor(zeros: [turbo.model.maxSequenceLength, turbo.config.hiddenSize]))
        }
    }

    /// A prefix written to disk and read back (memory-mapped) drives a decoder to bit-identical logits;
    /// a file for other weights, another model's shapes, another format or a bare conditioning is
    /// refused with `prefixMismatch`.
    @Test func aPrefixFileRoundTripsExactly() throws {
        let llama = try TinyT3(), turbo = try TinyTurboT3()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("t3-prefix-file-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let exaggeration = llama.tiny.float("exaggeration")
        let cases: [(String, T3, T3ConditioningInputs, [Int], Float)] = [
            ("llama", llama.model, T3ConditioningInputs(config: llama.config, speakerEmbedding: try llama.speaker,
                                                        promptTokens: try llama.prompt, exaggeration: exaggeration), try llama.text, 0.5),
            ("turbo", turbo.model, T3ConditioningInputs(config: turbo.config, speakerEmbedding: try turbo.speaker,
                                                        promptTokens: try turbo.prompt, exaggeration: 0), try turbo.text, 0),
        ]
        for (label, model, inputs, text, cfgWeight) in cases {
            let path = directory.appendingPathComponent("\(label).safetensors").path
            let built = try T3PrefixState(model: model, inputs: inputs)
            try built.write(to: path, fingerprint: "weights \(label)")
            let read = try T3PrefixState(contentsOf: path, model: model, fingerprint: "weights \(label)")
            #expect(read.inputs == inputs && read.conditioningLength == built.conditioningLength && read.byteCount == built.byteCount)
            let a = try T3Decoder(model: model, prefix: built, textTokens: text, cfgWeight: cfgWeight, maxNewTokens: 4)
            let b = try T3Decoder(model: model, prefix: read, textTokens: text, cfgWeight: cfgWeight, maxNewTokens: 4)
            for token in Self.forced(model.config).prefix(3) {
                #expect(a.logits == b.logits, "\(label): logits from the file must be identical")
                try a.feed(token)
                try b.feed(token)
            }
            do {
                _ = try T3PrefixState(contentsOf: path, model: model, fingerprint: "other weights")
                Issue.record("\(label): a file for other weights was accepted")
            } catch let T3Error.prefixMismatch(reason) {
                print("\(label): other weights refused (\(reason))")
            }
            let other = label == "llama" ? turbo.model : llama.model
            do {
                _ = try T3PrefixState(contentsOf: path, model: other, fingerprint: "weights \(label)")
                Issue.record("\(label): a file for another model's shapes was accepted")
            } catch let T3Error.prefixMismatch(reason) {
                print("\(label) file on the other model refused (\(reason))")
            }
        }
        let bare = try T3PrefixState(model: turbo.model, conditioning: try turbo.model.conditioning(
            speakerEmbedding: try turbo.speaker, promptTokens: try turbo.prompt, exaggeration: 0))
        #expect(throws: T3Error.self) { try bare.write(to: directory.appendingPathComponent("bare.safetensors").path, fingerprint: "x") }
        let foreign = directory.appendingPathComponent("foreign.safetensors").path
        try SafetensorsWriter.write([("x", Tensor(zeros: [2]))], metadata: ["format": "something else"], to: foreign)
        #expect(throws: T3Error.self) { try T3PrefixState(contentsOf: foreign, model: turbo.model, fingerprint: "x") }
    }
}
