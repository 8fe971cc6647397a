import Foundation

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

extension JapaneseHiraganaNormalizer {
    /// The normalizer over the dictionaries `KakasiDictionaryLocation` finds, or nil when none of its
    /// places holds them: then the multilingual tokenizer does what upstream does without pykakasi
    /// (`MultilingualTokenizer(directory:japanese: nil)` logs "pykakasi not available - Japanese text
    /// processing skipped" once and passes the text through).
    /// - Throws: `KakasiDictionaryError` when the files found are corrupt, or when
    ///   `CHATTERSTREAM_KAKASI_DICTIONARIES` names a folder without them (an explicit choice that failed).
    public static func installed(cacheRoot: URL?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                 workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) throws -> JapaneseHiraganaNormalizer?
    {
        if let explicit = environment[KakasiDictionaryLocation.environmentVariable], !explicit.isEmpty {
            return try JapaneseHiraganaNormalizer(dictionaryDirectory: URL(fileURLWithPath: explicit, isDirectory: true))
        }
        return try KakasiDictionaryLocation.locate(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory)
            .map { try JapaneseHiraganaNormalizer(dictionaryDirectory: $0) }
    }
}
