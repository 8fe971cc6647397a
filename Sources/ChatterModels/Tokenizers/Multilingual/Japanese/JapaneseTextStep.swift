import Foundation
import Synchronization

/// Where pykakasi 2.3.0's dictionaries are looked for, in order:
/// 1. `CHATTERSTREAM_KAKASI_DICTIONARIES` (a folder holding `kanwadict4.db`, `itaijidict4.db`, `halfkana3.db`);
/// 2. `<cache root>/kakasi/pykakasi-2.3.0/`, the cache root being `$HF_HOME/chatterstream`
///    (`HubSettings.cacheRoot`, passed in by the library);
/// 3. `.cache/kakasi/pykakasi-2.3.0/` under the working directory, where
///    `tools/kakasi/fetch-dictionaries.sh` puts them.
public enum KakasiDictionaryLocation {
    public static let environmentVariable = "CHATTERSTREAM_KAKASI_DICTIONARIES"
    /// The folder under a cache root (and under `.cache/`) that holds the dictionaries.
    public static let cacheSubdirectory = "kakasi/pykakasi-2.3.0"

    public static func candidates(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                  workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> [URL]
    {
        var urls: [URL] = []
        if let explicit = environment[environmentVariable], !explicit.isEmpty { urls.append(URL(fileURLWithPath: explicit, isDirectory: true)) }
        if let cacheRoot { urls.append(cacheRoot.appendingPathComponent(cacheSubdirectory, isDirectory: true)) }
        urls.append(workingDirectory.appendingPathComponent(".cache/\(cacheSubdirectory)", isDirectory: true))
        return urls
    }

    /// Whether `directory` holds every file `JapaneseHiraganaNormalizer` reads.
    public static func holdsDictionaries(_ directory: URL) -> Bool {
        KakasiDictionaries.fileNames.allSatisfy { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
    }

    /// The first candidate that holds the dictionaries, or nil.
    public static func locate(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                              workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) -> URL?
    {
        candidates(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory).first(where: holdsDictionaries)
    }
}

/// The Japanese step of the multilingual tokenizer as upstream runs it either way: with pykakasi's
/// dictionaries, `JapaneseHiraganaNormalizer`; without them, what upstream does when pykakasi is
/// not installed: the text passes through unchanged, with a warning (logged once per step here;
/// upstream logs it on every call).
public struct JapaneseTextStep: Sendable {
    /// Upstream's warning without pykakasi, which this one extends with where it looked and what to do.
    public static let upstreamWarning = "pykakasi not available - Japanese text processing skipped"

    public let normalizer: JapaneseHiraganaNormalizer?
    private var missingWarning: String
    private let warn: @Sendable (String) -> Void
    private let warned = WarnedFlag()

    /// Writes a warning to standard error (ChatterModels has no logger; the library's callers may pass their own).
    public static let standardErrorWarning: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    /// With the dictionaries in `dictionaryDirectory`, or passing text through when it is nil.
    /// - Throws: `KakasiDictionaryError` when the folder is given but a file is missing, unreadable or corrupt.
    public init(dictionaryDirectory: URL?, warn: @escaping @Sendable (String) -> Void = JapaneseTextStep.standardErrorWarning) throws {
        normalizer = try dictionaryDirectory.map { try JapaneseHiraganaNormalizer(dictionaryDirectory: $0) }
        missingWarning = "\(Self.upstreamWarning): pykakasi 2.3.0's dictionaries are not installed; run tools/kakasi/fetch-dictionaries.sh or set \(KakasiDictionaryLocation.environmentVariable)"
        self.warn = warn
    }

    /// Finds the dictionaries (`KakasiDictionaryLocation`) and loads them, or passes text through
    /// when none of the places holds them.
    /// - Throws: `KakasiDictionaryError` when found files are corrupt, or when
    ///   `CHATTERSTREAM_KAKASI_DICTIONARIES` names a folder without them (an explicit choice that failed).
    public static func installed(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                 workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                                 warn: @escaping @Sendable (String) -> Void = JapaneseTextStep.standardErrorWarning) throws -> JapaneseTextStep
    {
        if let explicit = environment[KakasiDictionaryLocation.environmentVariable], !explicit.isEmpty {
            return try JapaneseTextStep(dictionaryDirectory: URL(fileURLWithPath: explicit, isDirectory: true), warn: warn)
        }
        let found = KakasiDictionaryLocation.locate(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory)
        var step = try JapaneseTextStep(dictionaryDirectory: found, warn: warn)
        if found == nil {
            let places = KakasiDictionaryLocation.candidates(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory).map(\.path)
            step.missingWarning += " (looked in \(places.joined(separator: ", ")))"
        }
        return step
    }

    /// `hiragana_normalize(text)`, or `text` unchanged when the dictionaries are not installed.
    public func process(_ text: String) -> String {
        if let normalizer { return normalizer.process(text) }
        if warned.setOnce() { warn(missingWarning) }
        return text
    }
}

/// A flag that is set once, shared by copies of the step that owns it.
private final class WarnedFlag: Sendable {
    private let isSet = Mutex(false)

    /// True for the first caller only.
    func setOnce() -> Bool {
        isSet.withLock { isSet in
            defer { isSet = true }
            return !isSet
        }
    }
}
