import Testing
@testable import ChatterstreamServer

struct ServerMetricsTests {
    /// Tokens per second counts the model's tokens, not the audio after a speed change: 2 s
    /// delivered at double speed are 4 s of model audio, 100 S3 tokens at 25 Hz.
    @Test func speechTokensUndoTheSpeedChange() {
        #expect(ServerMetrics.speechTokens(audioSeconds: 2, speed: 1) == 50)
        #expect(ServerMetrics.speechTokens(audioSeconds: 2, speed: 2) == 100)
        #expect(ServerMetrics.speechTokens(audioSeconds: 4, speed: 0.5) == 50)
    }
}
