import Foundation
import Synchronization
import Testing
import ChatterstreamTestSupport
@testable import Chatterstream

/// The exit handler's work: every run in flight is cancelled and waited for, so no GEMM is running
/// when OpenBLAS's destructor clears its kernel table (a SIGSEGV at exit before). Tests run in
/// parallel, so none of them drains `InFlightRuns.shared` itself (that would cancel other tests' runs).
@Suite struct InFlightRunsTests {
    /// A registry of its own: `cancelAndWait` cancels a body that polls its cancellation as a run
    /// does, and returns only once the body has returned.
    @Test func cancelAndWaitCancelsAndAwaitsEveryRun() async throws {
        let registry = InFlightRuns()
        let cancellation = SynthesisCancellation()
        let started = Atomic<Bool>(false), timedOut = Atomic<Bool>(false)
        let thread = Thread {
            registry.run(cancellation: cancellation) {
                started.store(true, ordering: .relaxed)
                // Polls until cancelled; the 120 s bound only keeps a broken registry from hanging the suite.
                let deadline = Date().addingTimeInterval(120)
                while !cancellation.isCancelled {
                    if Date() > deadline { timedOut.store(true, ordering: .relaxed); break }
                    usleep(100)
                }
                usleep(20_000)  // work after noticing, which cancelAndWait must wait for
            }
        }
        thread.start()
        while !started.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(1)) }
        #expect(registry.count == 1)
        registry.cancelAndWait(seconds: 5)
        #expect(cancellation.isCancelled)
        #expect(registry.count == 0, "returned only after the run did")
        let stoppedByCancellation = !timedOut.load(ordering: .relaxed)
        #expect(stoppedByCancellation, "the run stopped because it was cancelled")
    }

    /// The engine's runs are counted in the shared registry while they compute, and not after.
    @Test func engineRunsAreCountedWhileTheyCompute() async throws {
        let tts = StreamingTTS(models: TinySpeechModels.shared, options: TinySpeechModels.config)
        let countedDuringStep = Atomic<Int>(0)
        let stream = tts.synthesize("Hi there.", voice: .builtin, options: nil,
                                    onDecodeStep: { _ in countedDuringStep.store(InFlightRuns.shared.count, ordering: .relaxed) })
        _ = try await StreamingTTSTests.collect(stream)
        #expect(countedDuringStep.load(ordering: .relaxed) >= 1, "the run was in the registry during its decode steps")
    }
}
