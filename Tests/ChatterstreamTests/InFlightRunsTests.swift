import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
@testable import Chatterstream

/// The exit handler's work: every run in flight is cancelled and waited for, so no GEMM is running
/// when OpenBLAS's destructor clears its kernel table (a SIGSEGV at exit before).
@Suite(.serialized) struct InFlightRunsTests {
    @Test func cancelAndWaitStopsARunMidStream() async throws {
        var options = TinySpeechModels.config
        options.maxTokens = 50
        let tts = StreamingTTS(models: TinySpeechModels.shared, options: options)
        let steps = Atomic<Int>(0)
        let stream = tts.synthesize("A sentence long enough to take many decode steps.", voice: .builtin, options: nil,
                                    onDecodeStep: { _ in steps.add(1, ordering: .relaxed) })
        let consumer = Task { try await StreamingTTSTests.collect(stream) }
        // Wait until the run is computing, then do what the exit handler does.
        let deadline = Date().addingTimeInterval(30)
        while steps.load(ordering: .relaxed) == 0 && Date() < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(InFlightRuns.count == 1, "one run in flight")
        InFlightRuns.cancelAndWait(seconds: 10)
        #expect(InFlightRuns.count == 0, "no run left after cancelAndWait")
        let stepsAtCancel = steps.load(ordering: .relaxed)
        await #expect(throws: StreamingTTSError.self) { _ = try await consumer.value }
        print("run stopped after \(stepsAtCancel) decode steps of at most 50")
        #expect(stepsAtCancel < 50)
        // The engine serves the next request.
        #expect(!(try await StreamingTTSTests.collect(tts.synthesize("Hi."))).isEmpty)
    }
}
