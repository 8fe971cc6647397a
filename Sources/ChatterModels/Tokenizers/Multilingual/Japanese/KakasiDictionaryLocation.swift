import Foundation

/// Where pykakasi 2.3.0's dictionaries are looked for, in order:
/// 1. `CHATTERSTREAM_KAKASI_DICTIONARIES` (a folder holding `kanwadict4.db`, `itaijidict4.db`, `halfkana3.db`);
/// 2. `<cache root>/kakasi/pykakasi-2.3.0/`, the cache root being `$HF_HOME/chatterstream`
///    (`HubSettings.cacheRoot`, passed in by the library);
/// 3. `.cache/kakasi/pykakasi-2.3.0/` under the working directory, where
///    `tools/kakasi/fetch-dictionaries.sh` puts them.
public enum KakasiDictionaryLocation: LanguageDataLocation {
    public static let environmentVariable = "CHATTERSTREAM_KAKASI_DICTIONARIES"
    public static let cacheSubdirectory = "kakasi/pykakasi-2.3.0"
    /// What `JapaneseHiraganaNormalizer` reads.
    public static var requiredFileNames: [String] { KakasiDictionaries.fileNames }
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
