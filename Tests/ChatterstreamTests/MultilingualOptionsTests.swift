import ChatterModels
import Foundation
import Testing
@testable import Chatterstream

/// `language` and the multilingual versions' defaults, as `SynthesisOptions.validate(for:)` decides them.
@Suite struct MultilingualOptionsTests {
    @Test func languageIsCheckedAgainstTheFamily() throws {
        var options = SynthesisOptions()
        options.language = "FR"  // compared after lowercasing, as upstream
        #expect(throws: Never.self) { try options.validate(for: .chatterboxMultilingual) }
        #expect(throws: Never.self) { try options.validate(for: .chatterboxMultilingualV2) }
        options.language = "xx"
        do {
            try options.validate(for: .chatterboxMultilingual)
            Issue.record("an unsupported language was accepted")
        } catch let StreamingTTSError.invalidOption(field, reason) {
            #expect(field == "language")
            #expect(reason.contains("fr (French)") && reason.contains("zh (Chinese)"), "\(reason)")
        }
        options.language = "fr"
        for family in [ModelFamily.chatterbox, .chatterboxTurbo, .chatterboxNano] {
            do {
                try options.validate(for: family)
                Issue.record("\(family) took a language")
            } catch let StreamingTTSError.invalidOption(field, reason) {
                #expect(field == "language")
                #expect(reason.contains("chatterbox-multilingual"), "\(reason)")
            }
        }
        options.language = "EN"  // what the English-only models speak: accepted, as their tokenizers accept it
        for family in [ModelFamily.chatterbox, .chatterboxTurbo, .chatterboxNano, .chatterboxMultilingual] {
            #expect(throws: Never.self) { try options.validate(for: family) }
        }
        options.language = nil  // no tag, as upstream's language_id=None
        #expect(throws: Never.self) { try options.validate(for: .chatterboxMultilingual) }
        #expect(throws: Never.self) { try options.validate(for: .chatterbox) }
    }

    @Test func languageTravelsOnTheWire() throws {
        let options = try JSONDecoder().decode(SynthesisOptions.self, from: Data(#"{"language": "de", "seed": 1}"#.utf8))
        #expect(options.language == "de")
        #expect(options.seed == 1)
    }

    /// V3 (`chatterbox-multilingual`, upstream 3f35dfc) and V2 (0.1.7) sample with their own defaults.
    @Test func defaultsPerVersion() {
        let v3 = SynthesisOptions().resolved(for: .chatterboxMultilingual).sampling
        let v2 = SynthesisOptions().resolved(for: .chatterboxMultilingualV2).sampling
        #expect(v3.repetitionPenalty == 1.2 && v2.repetitionPenalty == 2.0)
        for sampling in [v2, v3] {
            #expect(sampling.temperature == 0.8 && sampling.cfgWeight == 0.5 && sampling.minP == 0.05 && sampling.topP == 1.0)
            #expect(sampling.maxNewTokens == 1000)
        }
        #expect(ModelFamily.chatterboxMultilingual.variant.finalTokenTrimmed && !ModelFamily.chatterboxMultilingualV2.variant.finalTokenTrimmed)
        #expect(ModelFamily.chatterboxMultilingual.variant.t3.alignmentHeads == nil)
        #expect(ModelFamily.chatterboxMultilingualV2.variant.t3.alignmentHeads == T3AlignmentStreamAnalyzer.multilingualHeads)
    }
}
