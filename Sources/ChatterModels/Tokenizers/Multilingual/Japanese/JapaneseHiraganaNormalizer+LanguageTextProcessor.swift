import Foundation
import Synchronization

/// The multilingual tokenizer's `ja` step (`MultilingualTokenizer(directory:japanese:)`): `process`
/// is upstream `hiragana_normalize`.
extension JapaneseHiraganaNormalizer: LanguageTextProcessor {}

/// `JapaneseHiraganaNormalizer` over dictionaries found at load time but read on first use: the
/// kanwa dictionary costs about 1 s and 125 MB, which a model speaking French should not pay.
/// A dictionary that turns out corrupt when first read is logged once, with what to run, and
/// Japanese text then passes through as upstream's path without pykakasi does (`process` cannot throw).
public final class LazyJapaneseHiraganaNormalizer: LanguageTextProcessor {
    private enum State { case unread, loaded(JapaneseHiraganaNormalizer), failed }
    private let directory: URL
    private let log: TextProcessingLog
    private let state = Mutex<State>(.unread)

    public init(dictionaryDirectory: URL, log: TextProcessingLog) {
        directory = dictionaryDirectory
        self.log = log
    }

    /// The dictionaries `KakasiDictionaryLocation` finds under `cacheRoot` (or `.cache/`), read on
    /// first use; nil when none of its places holds them. A folder named by
    /// `CHATTERSTREAM_KAKASI_DICTIONARIES` is taken as it is (an explicit choice): if it lacks the
    /// files, the first Japanese text logs why.
    public static func installed(cacheRoot: URL?, log: TextProcessingLog,
                                 environment: [String: String] = ProcessInfo.processInfo.environment,
                                 workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        -> LazyJapaneseHiraganaNormalizer?
    {
        if let explicit = environment[KakasiDictionaryLocation.environmentVariable], !explicit.isEmpty {
            return LazyJapaneseHiraganaNormalizer(dictionaryDirectory: URL(fileURLWithPath: explicit, isDirectory: true), log: log)
        }
        return KakasiDictionaryLocation.locate(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory)
            .map { LazyJapaneseHiraganaNormalizer(dictionaryDirectory: $0, log: log) }
    }

    public func process(_ text: String) -> String {
        let normalizer: JapaneseHiraganaNormalizer? = state.withLock { state in
            switch state {
            case let .loaded(normalizer): return normalizer
            case .failed: return nil
            case .unread:
                do {
                    let normalizer = try JapaneseHiraganaNormalizer(dictionaryDirectory: directory)
                    state = .loaded(normalizer)
                    return normalizer
                } catch {
                    state = .failed
                    log.warnOnce("Japanese kanji→hiragana skipped: \(error) (rerun tools/kakasi/fetch-dictionaries.sh, "
                                 + "or point \(KakasiDictionaryLocation.environmentVariable) at pykakasi 2.3.0's dictionaries)")
                    return nil
                }
            }
        }
        return normalizer?.process(text) ?? text
    }
}
