import ChatterTensor
import Foundation
import Testing
import TestSupport
@testable import ChatterModels

/// Multilingual V2's alignment-stream analyser on the tiny T3 (`t3/tiny` cases `mtl_<k>`, made by
/// upstream 0.1.7's `T3.inference` with `LLAMA_ALIGNED_HEADS` patched to heads of the tiny model).
@Suite struct T3AlignmentTests {
    /// The tiny model with the fixture's alignment heads: the analyser runs.
    static func model(_ t: TinyT3, heads: [Int]) throws -> T3 {
        var config = t.config
        config.alignmentHeads = stride(from: 0, to: heads.count, by: 2).map { T3AttentionHead(layer: heads[$0], head: heads[$0 + 1]) }
        return try T3(weights: t.fixture.file.scoped("tiny.w."), config: config)
    }

    @Test func samplingUnderTheAnalyserMatchesUpstream() throws {
        let t = try TinyT3()
        var totals = [0, 0]
        for testCase in t.fixture.cases where testCase.name.hasPrefix("mtl_") {
            let heads = (testCase.params["aligned_heads"] as! [[NSNumber]]).flatMap { $0.map(\.intValue) }
            let model = try Self.model(t, heads: heads)
            let parameters = T3SamplingParameters(
                temperature: testCase.float("temperature"), cfgWeight: testCase.float("cfg_weight"),
                exaggeration: testCase.float("exaggeration"), repetitionPenalty: testCase.float("repetition_penalty"),
                minP: testCase.float("min_p"), topP: testCase.float("top_p"), maxNewTokens: testCase.int("max_new_tokens"))
            let text = Array(try t.ints(testCase, "text_tokens").dropFirst().dropLast())
            let iterator = try T3TokenIterator(model: model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                               textTokens: text, parameters: parameters,
                                               uniforms: ReplayedUniforms(try t.fixture.doubles(testCase, "uniforms")))
            let reference = t.fixture.has(testCase, "logits") ? try t.fixture.tensor(testCase, "logits") : nil
            var worst: Float = 0, forcedMatch = true, step = 0
            while iterator.next() != nil {
                if let reference, step < reference.shape[0] {
                    let v = reference.shape[1]
                    let row = Array(reference.scalars()[(step * v)..<((step + 1) * v)])
                    // Entries the analyser set (±2¹⁵) must be set here too; the rest are the model's logits.
                    let scale = row.filter { abs($0) != 32768 }.map(abs).max() ?? 1
                    for (a, b) in zip(iterator.lastLogits, row) {
                        if abs(b) == 32768 { forcedMatch = forcedMatch && a == b } else { worst = max(worst, abs(a - b) / scale) }
                    }
                }
                step += 1
            }
            let counts = [iterator.alignment?.suppressedEndOfSpeech ?? -1, iterator.alignment?.forcedEndOfSpeech ?? -1]
            let expected = try t.ints(testCase, "alignment_counts")
            print("t3 alignment \(testCase.name): \(iterator.tokens.count) tokens, analyser changed the logits of \(counts[0]) draws (EOS suppressed) and \(counts[1]) (EOS forced), upstream \(expected)"
                  + (reference == nil ? "" : "; logits max relative error \(worst)"))
            #expect(iterator.tokens == (try t.ints(testCase, "tokens")), "\(testCase.name)")
            #expect(counts == expected, "\(testCase.name)")
            #expect(forcedMatch, "\(testCase.name): the logits the analyser set differ")
            #expect(worst <= 1e-4, "\(testCase.name)")
            totals[0] += counts[0]
            totals[1] += counts[1]
        }
        // The fixture exercises both interventions.
        #expect(totals[0] > 0 && totals[1] > 0, "counts \(totals)")
    }

    /// Alignment heads outside the model are a typed error, not a crash.
    @Test func headsOutsideTheModelAreRefused() throws {
        let t = try TinyT3()
        let model = try Self.model(t, heads: [2, 0])  // the tiny model has layers 0 and 1
        #expect(throws: T3Error.self) {
            _ = try T3TokenIterator(model: model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt, textTokens: try t.text)
        }
    }

    /// Without alignment heads (V3, every other model) nothing is analysed and nothing is observed.
    @Test func noAnalyserWithoutHeads() throws {
        let t = try TinyT3()
        let iterator = try T3TokenIterator(model: t.model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                           textTokens: try t.text, parameters: T3SamplingParameters(maxNewTokens: 3))
        _ = Array(iterator)
        #expect(iterator.alignment == nil)
        #expect(iterator.decoder.attentionProbabilities.isEmpty)
    }

    /// Texts of five or fewer wrapped tokens: upstream raises once alignment completes (`max()` over
    /// an empty dimension); here generation goes on, without the repetition rule.
    @Test func shortTextsDoNotFail() throws {
        let t = try TinyT3()
        let model = try Self.model(t, heads: [1, 2, 0, 3, 1, 0])
        let iterator = try T3TokenIterator(model: model, speakerEmbedding: try t.speaker, promptTokens: try t.prompt,
                                           textTokens: [5], parameters: T3SamplingParameters(maxNewTokens: 40),
                                           uniforms: SplitMixUniforms(seed: 3))
        _ = Array(iterator)
        #expect(iterator.alignment?.complete == true)
        #expect(iterator.finished)
    }
}
