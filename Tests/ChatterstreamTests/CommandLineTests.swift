import Foundation
import Testing
import TestSupport

/// The `chatterstream` binary itself (built beside the test bundle by `swift build --build-tests` and
/// `swift test`), for what only its argument parsing and command order decide.
@Suite struct CommandLineTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().appendingPathComponent("chatterstream")

    /// Runs the CLI with `arguments`; its exit status and stderr.
    static func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        // No hub access: a run that got as far as loading a model would fail on this, not hang.
        process.environment = ["HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-hf-home", "PATH": "/usr/bin:/bin"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `--temperature -1` reached argument-parser as a missing value; now the range check answers.
    @Test func negativeNumbersReachValidation() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first: \(Self.binary.path)")
        let scratch = try TemporaryDirectory()
        for (option, value, field) in [("--temperature", "-1", "temperature"), ("--top-p", "-0.5", "top_p"),
                                       ("--max-tokens", "-3", "max"), ("--cfg-weight", "-2", "cfg_weight"),
                                       ("--first-chunk-tokens", "-1", "first_chunk_tokens"), ("--flow-steps", "-1", "flow_steps"),
                                       ("--flow-steps", "0", "flow_steps"), ("--flow-prompt-tokens", "5", "flow_prompt_tokens")] {
            let result = try Self.run(["say", "Hi.", "-o", scratch.filePath("out.wav"), "--model-dir", "/nonexistent-model", option, value])
            print("\(option) \(value): exit \(result.status): \(result.stderr.split(separator: "\n").first ?? "")")
            #expect(result.status != 0)
            #expect(!result.stderr.contains("Missing value"), "\(option) \(value): \(result.stderr)")
            #expect(result.stderr.contains(field), "\(option) \(value): \(result.stderr)")
            #expect(!result.stderr.contains("nonexistent-model"), "refused before any model is loaded: \(result.stderr)")
        }
    }

    /// `say` checks its output before synthesising (and before loading a model), so an unwritable
    /// path costs nothing; nothing is left behind.
    @Test func sayChecksTheOutputPathFirst() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the package first: \(Self.binary.path)")
        let scratch = try TemporaryDirectory()
        for output in ["/nonexistent-folder/out.wav", scratch.url.path + "/", scratch.filePath("folder.wav")] {
            if output.hasSuffix("folder.wav") { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
            let result = try Self.run(["say", "Hi.", "-o", output, "--model-dir", "/nonexistent-model"])
            print("say -o \(output): exit \(result.status): \(result.stderr.split(separator: "\n").first ?? "")")
            #expect(result.status != 0)
            #expect(!result.stderr.contains("nonexistent-model"), "the output is checked before the model: \(result.stderr)")
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.url.path)
        #expect(left == ["folder.wav"], "\(left)")
    }
}
