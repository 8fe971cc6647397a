import ChatterAudio
import ChatterstreamServer
import Foundation
import Testing
import ChatterstreamTestSupport
import TestSupport
@testable import Chatterstream

/// The official OpenAI Python SDK against the server: every response_format, streamed and not,
/// decoded by ffmpeg to the engine's duration. The SDK lives in a venv this test makes under the
/// build folder (`.build/openai-sdk-venv`, from PyPI); without Python, PyPI or ffmpeg the test says
/// SKIPPED loudly and checks nothing.
@Suite(.serialized) struct OpenAISDKTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The venv's python with `openai` importable, made once; nil (with the reason printed) when it cannot be.
    static func sdkPython() throws -> URL? {
        let venv = packageRoot.appendingPathComponent(".build/openai-sdk-venv")
        let python = venv.appendingPathComponent("bin/python")
        func works() -> Bool { (try? ExternalTool.at(python)?.run(["-c", "import openai"]).status) == 0 }
        if works() { return python }
        guard let system = ExternalTool("python3") else { print("SKIPPED: no python3 on PATH for the OpenAI SDK test"); return nil }
        let made = try system.run(["-m", "venv", "--clear", venv.path])
        guard made.status == 0 else { print("SKIPPED: python3 -m venv failed (apt-get install python3-venv): \(made.stderr)"); return nil }
        let pip = try ExternalTool.at(venv.appendingPathComponent("bin/pip"))!.run(["install", "--quiet", "openai"])
        guard pip.status == 0, works() else { print("SKIPPED: pip install openai failed (no PyPI?): \(pip.stderr.suffix(500))"); return nil }
        return python
    }

    @Test func officialSDKGetsPlayableAudioInEveryFormatStreamedAndNot() async throws {
        guard ExternalTool("ffmpeg") != nil else { print("SKIPPED: ffmpeg is not on PATH"); return }
        guard let python = try await offThePool({ try Self.sdkPython() }) else { return }
        let text = "Hello from the OpenAI SDK."
        var options = TinySpeechModels.config
        options.seed = 51
        var direct = 0
        let engine = StreamingTTS(models: TinySpeechModels.shared, options: options)
        for try await chunk in engine.synthesize(text) { direct += chunk.sampleCount }
        let expected = direct
        try await RunningSpeechServer.with(engine: engine, configure: { $0.apiKey = "sk-sdk-test" }) { server in
            let script = Self.packageRoot.appendingPathComponent("tools/openai-sdk/speech_client.py").path
            let base = server.baseURL + "/v1"
            let result = try await offThePool { try ExternalTool.at(python)!.run([script, base, "sk-sdk-test"]) }
            #expect(result.status == 0, "the SDK client failed: \(result.stderr.suffix(2000))")
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [String: [String: Any]]] ?? [:]
            for format in AudioFormat.allCases {
                for mode in ["streamed", "whole"] {
                    let entry = report[format.rawValue]?[mode] ?? [:]
                    let samples = entry["samples"] as? Int ?? -1
                    print("SDK \(mode) \(format): \(entry["bytes"] ?? "?") bytes, \(entry["content_type"] ?? "?"), ffmpeg \(samples) samples (engine \(expected))")
                    #expect(entry["ffmpeg_status"] as? Int == 0, "\(format) \(mode): \(entry["ffmpeg_stderr"] ?? "")")
                    switch format {
                    case .pcm, .wav, .flac, .opus: #expect(samples == expected, "\(format) \(mode)")
                    case .mp3: #expect(samples >= expected && samples <= expected + 2 * 1152 + 576, "\(format) \(mode)")
                    case .aac: #expect(samples >= expected && samples <= expected + 2 * 1024, "\(format) \(mode)")
                    }
                }
            }
        }
    }
}
