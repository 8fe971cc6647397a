import Foundation
import Synchronization

/// Where spacy-pkuseg's model is looked for (`LanguageDataLocation`): a folder holding `features.msgpack`
/// and `weights.npz` (the `spacy_ontonotes` model, unzipped from its GitHub release asset as upstream
/// unzips it into `~/.pkuseg/spacy_ontonotes/`) and `default.pkl` (the word list in spacy-pkuseg 1.0.2's
/// wheel): `CHATTERSTREAM_PKUSEG_MODEL`, then `<cache root>/pkuseg/spacy-pkuseg-1.0.2/` (where
/// `ModelStore.ensurePkusegModel` installs it), then `.cache/pkuseg/spacy-pkuseg-1.0.2/` (where
/// `tools/pkuseg/fetch-model.sh` puts it).
public enum PkusegModelLocation: LanguageDataLocation {
    public static let environmentVariable = "CHATTERSTREAM_PKUSEG_MODEL"
    public static let cacheSubdirectory = "pkuseg/spacy-pkuseg-1.0.2"
    /// What `PkusegSegmenter(directory:)` reads.
    public static let requiredFileNames = [PkusegModel.featuresFileName, PkusegModel.weightsFileName, PkusegWordList.defaultFileName]
}

/// The Chinese step's segmenter, read on first use: the real model's tables cost time and memory a
/// model speaking French should not pay. A model that turns out unreadable when first read is logged
/// once, with what to run, and Chinese text is then coded unsegmented (`cut` answers nil), as upstream
/// does without spacy-pkuseg (upstream with spacy-pkuseg but without its model crashes instead).
public final class LazyPkusegSegmenter: Sendable {
    private enum State { case unread, loaded(PkusegSegmenter), failed }
    private let directory: URL?
    private let log: TextProcessingLog?
    private let state: Mutex<State>

    /// The model in `modelDirectory`, read on first use.
    public init(modelDirectory: URL, log: TextProcessingLog) {
        directory = modelDirectory
        self.log = log
        state = Mutex(.unread)
    }

    /// An already loaded segmenter (tests, tools).
    public init(_ segmenter: PkusegSegmenter) {
        directory = nil
        log = nil
        state = Mutex(.loaded(segmenter))
    }

    /// The model `PkusegModelLocation` finds under `cacheRoot` (or `.cache/`), read on first use;
    /// nil when none of its places holds it. A folder named by `CHATTERSTREAM_PKUSEG_MODEL` is taken
    /// as it is (an explicit choice): if it lacks the files, the first Chinese text logs why.
    public static func installed(cacheRoot: URL?, log: TextProcessingLog,
                                 environment: [String: String] = ProcessInfo.processInfo.environment,
                                 workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        -> LazyPkusegSegmenter?
    {
        if let explicit = environment[PkusegModelLocation.environmentVariable], !explicit.isEmpty {
            return LazyPkusegSegmenter(modelDirectory: URL(fileURLWithPath: explicit, isDirectory: true), log: log)
        }
        return PkusegModelLocation.locate(cacheRoot: cacheRoot, environment: environment, workingDirectory: workingDirectory)
            .map { LazyPkusegSegmenter(modelDirectory: $0, log: log) }
    }

    /// `pkuseg.cut(text)`, or nil when the model could not be read (said once through the log).
    public func cut(_ text: String) -> [String]? {
        let segmenter: PkusegSegmenter? = state.withLock { state in
            switch state {
            case let .loaded(segmenter): return segmenter
            case .failed: return nil
            case .unread:
                guard let directory else { return nil }
                do {
                    let segmenter = try PkusegSegmenter(directory: directory)
                    state = .loaded(segmenter)
                    return segmenter
                } catch {
                    state = .failed
                    log?.warnOnce("Chinese word segmentation skipped: \(error)")
                    return nil
                }
            }
        }
        return segmenter?.cut(text)
    }
}
