import ChatterAudio
import ChatterTensor
import Foundation
import Testing
import TestSupport

@Suite struct S3GenMelTests {
    @Test(arguments: ["speech_0122", "speech_0121_odd"]) func matchesChatterbox(name: String) throws {
        let fixture = try Fixture("audio/prompt_mel")
        let input = try fixture.tensor(name, "input").scalars()
        let mel = try S3GenMel.compute(input)
        #expect(mel.shape == [80, input.count / 480])
        expectParity(mel, try fixture.tensor(name, "mel"), tolerance: 1e-5, "S3Gen prompt mel \(name)")
    }

    @Test func shortInputIsAnError() throws {
        #expect(throws: AudioFrontEndError.signalTooShort(samples: 720, minimum: 721, stage: "S3Gen prompt mel")) {
            try S3GenMel.compute([Float](repeating: 0, count: 720))
        }
        #expect(try S3GenMel.compute([Float](repeating: 0.1, count: 721)).shape == [80, 1])
    }
}
