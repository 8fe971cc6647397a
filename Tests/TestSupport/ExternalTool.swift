import Foundation

/// A command-line program the acceptance tests use as a real client (ffmpeg, ffprobe, opusinfo),
/// found on PATH; tests skip with a clear message when it is absent.
public struct ExternalTool: Sendable {
    public let name: String
    public let url: URL

    /// The tool, or nil when `name` is not on PATH.
    public init?(_ name: String) {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let directory = path.split(separator: ":").first(where: {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(name)")
        }) else { return nil }
        self.name = name
        url = URL(fileURLWithPath: "\(directory)/\(name)")
    }

    /// The executable at `url` (not looked up on PATH), or nil when there is none.
    public static func at(_ url: URL) -> ExternalTool? {
        FileManager.default.isExecutableFile(atPath: url.path) ? ExternalTool(name: url.lastPathComponent, url: url) : nil
    }

    private init(name: String, url: URL) {
        self.name = name
        self.url = url
    }

    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs the tool to completion with `arguments`. Its output goes to files rather than pipes, so
    /// a chatty tool can never fill a pipe and stall.
    public func run(_ arguments: [String]) throws -> Result {
        let folder = try TemporaryDirectory()
        _ = FileManager.default.createFile(atPath: folder.filePath("stdout"), contents: nil)
        _ = FileManager.default.createFile(atPath: folder.filePath("stderr"), contents: nil)
        let out = try FileHandle(forWritingTo: folder.path("stdout"))
        let err = try FileHandle(forWritingTo: folder.path("stderr"))
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: folder.path("stdout")), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: folder.path("stderr")), as: UTF8.self))
    }
}
