import ChatterstreamServer
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// A bounded loopback load test: 16 clients, 64 requests to POST /v1/audio/speech on the tiny
/// engine, through tools/serve-load/load_test.py (the script BENCHMARKS.md's figures come from).
/// Every answer must be complete and unmixed (same text and seed: same bytes; and those bytes are
/// the engine's own); time to first byte p50/p95 are printed (the tiny engine's, not a benchmark).
@Suite(.serialized) struct LoadTests {
    @Test func sixteenClientsSixtyFourRequestsCompleteAndUnmixed() async throws {
        guard let python = ExternalTool("python3") else { print("SKIPPED: no python3 for tools/serve-load/load_test.py"); return }
        var options = TinySpeechModels.config
        options.maxTokens = 20
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: options)
        var direct = Data()
        var variant0 = options
        variant0.seed = 1000
        for try await chunk in engine.synthesize("Load test, variant 0.", options: variant0) { direct.append(chunk.pcm) }
        let expected = direct
        try await RunningSpeechServer.with(engine: engine) { server in
            let script = OpenAISDKTests.packageRoot.appendingPathComponent("tools/serve-load/load_test.py").path
            let url = server.baseURL
            let result = try await offThePool {
                try python.run([script, "--url", url, "--clients", "16", "--requests", "64", "--variants", "4",
                                "--text", "Load test, variant {i}.", "--pid", String(getpid())])
            }
            print("load test: status \(result.status)\n\(result.stdout)\(result.stderr.suffix(2000))")
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            #expect(result.status == 0)
            #expect(report["complete"] as? Int == 64)
            #expect(report["unmixed"] as? Bool == true)
            // Variant 0's bytes are the engine's own for the same text and seed.
            let check = try await server.post("/v1/audio/speech", json: ["input": "Load test, variant 0.", "response_format": "pcm", "seed": 1000])
            #expect(check.body == expected)
            #expect(Double(report["audio_bytes_mean"] as? Double ?? 0) > 0)
        }
    }
}
