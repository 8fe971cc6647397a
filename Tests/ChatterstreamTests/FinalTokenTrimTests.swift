import ChatterAudio
import ChatterTensor
import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import ChatterModels
@testable import Chatterstream

/// Multilingual V3's final-token trim (`ModelVariant.finalTokenTrimmed`, upstream 3f35dfc), on the
/// tiny random model: a one-shot run is one render over the tokens cut to `max(1, n − 1)` tokens of
/// audio, and a streamed run emits exactly as many samples.
@Suite struct FinalTokenTrimTests {
    static var trimmed: SpeechModels {
        var models = TinySpeechModels.shared
        let family = ModelVariant.chatterbox
        models.variant = ModelVariant(
            name: "chatterbox-trimmed-test", hubRepository: family.hubRepository, voiceEncoderFile: .ve, t3File: .t3Original,
            s3genFile: .s3gen, carried: [], textTokenizer: .english, voiceRecipe: .chatterbox, samplingDefaults: family.samplingDefaults,
            finalTokenTrimmed: true, t3: family.t3
        ).resized(t3: models.variant.t3, s3genDecoderHeads: models.variant.s3genDecoderHeads, vocoder: models.variant.vocoder)
        return models
    }

    @Test func oneShotAndStreamedRunsDropTheFinalTokensAudio() throws {
        let models = Self.trimmed
        var config = TinySpeechModels.config
        config.oneShot = true
        let text = "Hello there, this is a trimmed test."
        let tokens = try StreamingTTSTests.speechTokens(text, config: config)
        try #require(tokens.count > 1)
        var lengths: [Int] = []
        for oneShot in [true, false] {
            config.oneShot = oneShot
            let chunks = Mutex<[AudioChunk]>([])
            let run = SynthesisRun(models: models, config: config.resolved(for: .chatterbox), seed: config.seed!,
                                   cancellation: SynthesisCancellation(), emit: { chunk in chunks.withLock { $0.append(chunk) } })
            _ = try run.run(textPieces: try SynthesisRun.textPieces(text, models: models, config: config), voice: models.builtinVoice)
            let emitted = StreamingTTSTests.samples(chunks.withLock { $0 })
            lengths.append(emitted.count)
            if oneShot {
                let render = try S3GenStream.renderCounted(s3gen: models.s3gen, tokens: tokens, reference: models.builtinVoice.gen,
                                                           noiseSeed: run.flowSeed, drawSeed: run.drawSeed).samples
                let kept = (tokens.count - 1) * models.s3gen.samplesPerToken
                #expect(render.count == tokens.count * models.s3gen.samplesPerToken)
                let expected = AudioChunk(pcm: SynthesisRun.pcm16(Array(render.prefix(kept))), sampleRate: 24_000, isFinal: true,
                                          chunkIndex: 0).samples
                #expect(emitted == expected, "the one-shot run is the render less the last token's audio")
            }
        }
        print("final-token trim: \(tokens.count) tokens → \(lengths[0]) samples one-shot, \(lengths[1]) streamed")
        #expect(lengths == [(tokens.count - 1) * 960, (tokens.count - 1) * 960])
    }
}
