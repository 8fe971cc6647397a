import Foundation

/// Where the data of a language step that is not committed here (pykakasi's dictionaries, spacy-pkuseg's
/// model) is looked for, in order:
/// 1. the folder named by `environmentVariable`;
/// 2. `<cache root>/<cacheSubdirectory>/`, the cache root being `$HF_HOME/chatterstream`
///    (`HubSettings.cacheRoot`, passed in by the library);
/// 3. `.cache/<cacheSubdirectory>/` under the working directory, where the `tools/` fetch scripts put it.
/// A candidate counts when it holds every one of `requiredFileNames`.
public protocol LanguageDataLocation {
    static var environmentVariable: String { get }
    /// The folder under a cache root (and under `.cache/`) that holds the files.
    static var cacheSubdirectory: String { get }
    /// The files the step reads, all of which a folder must hold.
    static var requiredFileNames: [String] { get }
}

extension LanguageDataLocation {
    public static func candidates(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                  workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> [URL]
    {
        var urls: [URL] = []
        if let explicit = environment[environmentVariable], !explicit.isEmpty { urls.append(URL(fileURLWithPath: explicit, isDirectory: true)) }
        if let cacheRoot { urls.append(cacheRoot.appendingPathComponent(cacheSubdirectory, isDirectory: true)) }
        urls.append(workingDirectory.appendingPathComponent(".cache/\(cacheSubdirectory)", isDirectory: true))
        return urls
    }

    /// Whether `directory` holds every file the step reads.
    public static func holdsFiles(_ directory: URL) -> Bool {
        requiredFileNames.allSatisfy { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
    }

    /// The first candidate that holds the files, or nil.
    public static func locate(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                              workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> URL?
    {
        candidates(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory).first(where: holdsFiles)
    }
}
