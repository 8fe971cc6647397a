import ChatterTensor
import Foundation

/// Runs a script of the upstream reference environment (torch + chatterbox-tts) in the same bench
/// run, with torch's thread pools sized like ours, and returns the JSON document it prints on
/// stdout (its stderr passes through to ours).
func runReferencePython(_ python: String, arguments: [String], threads: Int) throws -> [String: Any] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMP_NUM_THREADS"] = String(threads)
    environment["MKL_NUM_THREADS"] = String(threads)
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.standardError
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let document = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw TensorError.invalidArgument("\(arguments.first ?? python) exited with status \(process.terminationStatus): \(String(decoding: data.prefix(2000), as: UTF8.self))")
    }
    return document
}
