import ArgumentParser
import Chatterstream
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ModelFamily: ExpressibleByArgument {}

/// `chatterstream download`: fetch, verify and cache a model family's upstream checkpoint.
struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download, verify and cache a model family from the Hugging Face hub.",
        discussion: """
            Files are checked against their published size and sha256 and cached under \
            $HF_HOME/chatterstream (default ~/.cache/huggingface/chatterstream). An interrupted \
            download resumes where it stopped. Environment: HF_HOME, HF_ENDPOINT (a mirror), \
            HF_TOKEN (for gated or private repositories), HF_HUB_OFFLINE=1 (use the cache only). \
            Prints the cached model directory on stdout; progress goes to stderr.
            """)

    @Option(help: "Model family.")
    var model: ModelFamily = .chatterbox

    @Option(help: "Hub revision (branch, tag or commit).")
    var revision = "main"

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func run() async throws {
        let store = ModelStore()
        let renderer = ProgressRenderer(enabled: !quiet)
        let directory = try await store.ensure(model, revision: revision, progress: renderer.render)
        // The watermarker's checkpoint comes with the model (synthesis needs it unless --no-watermark).
        _ = try await store.ensurePerthCheckpoint(progress: renderer.render)
        // The multilingual model's Chinese word segmentation (spacy-pkuseg's model): without it Chinese
        // is coded unsegmented, so a failure is a warning, not an error.
        if store.needsPkusegModel(for: model) {
            do {
                _ = try await store.ensurePkusegModel(progress: renderer.render)
            } catch {
                FileHandle.standardError.write(Data("warning: \(error)\n".utf8))
            }
        }
        print(directory.path)
    }
}

/// Renders store events on stderr: one updating line per file on a terminal, a line per event
/// (and per 10% of a file) otherwise.
///
/// `@unchecked Sendable`: events arrive from URLSession's delegate queue; state is behind `lock`.
final class ProgressRenderer: @unchecked Sendable {
    private let enabled: Bool
    private let terminal = isatty(STDERR_FILENO) == 1
    private let lock = NSLock()
    private var started = ContinuousClock.now
    private var startBytes: Int64 = 0
    private var lastDecile: Int64 = -1
    private var lineOpen = false

    init(enabled: Bool) { self.enabled = enabled }

    func render(_ event: ModelStoreEvent) {
        guard enabled else { return }
        lock.withLock {
            switch event {
            case let .cacheHit(directory):
                line("cached: \(directory.path)")
            case let .waitingForLock(path):
                line("waiting for another chatterstream process (lock \(path.path))")
            case let .fileAlreadyDownloaded(file, size):
                line("\(file): already downloaded (\(Self.megabytes(size)))")
            case let .hashingPartial(file, bytes):
                line("\(file): checking the \(Self.megabytes(bytes)) downloaded earlier")
            case let .downloadStarted(file, index, count, resumingFrom):
                started = .now
                startBytes = resumingFrom
                lastDecile = -1
                line("[\(index)/\(count)] \(file)" + (resumingFrom > 0 ? ": resuming at \(Self.megabytes(resumingFrom))" : ""))
            case let .downloadProgress(file, bytes, total):
                let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                    + Double((ContinuousClock.now - started).components.seconds)
                let rate = seconds > 0 ? Double(bytes - startBytes) / seconds / 1e6 : 0
                var text = "  \(file): \(Self.megabytes(bytes))"
                if let total, total > 0 {
                    text += " / \(Self.megabytes(total)) (\(bytes * 100 / total)%)"
                }
                text += String(format: "  %.1f MB/s", rate)
                if terminal {
                    write("\r\u{1B}[K" + text)
                    lineOpen = true
                } else if let total, total > 0, bytes * 10 / total > lastDecile {
                    lastDecile = bytes * 10 / total
                    line(text)
                }
            case let .retrying(file, attempt, from, reason):
                line("\(file): connection lost (\(reason)); attempt \(attempt) from \(Self.megabytes(from))")
            case let .fileVerified(file, size, sha256):
                line("\(file): verified \(Self.megabytes(size)), sha256 \(sha256.prefix(16))…")
            case let .fileAcceptedUnpinned(file, size, sha256):
                line("warning: \(file): accepted unverified (\(Self.megabytes(size)), sha256 \(sha256)): this build has no"
                     + " published size and sha256 for it; both are recorded in the model's chatterstream-model.json")
            case let .optionalFileAbsent(file):
                line("warning: \(file) is not published; the model works without it")
            case let .converting(family, converter):
                line("converting \(family.rawValue) (\(converter))")
            case .finished:
                break
            }
        }
    }

    private func line(_ text: String) {
        write((lineOpen ? "\r\u{1B}[K" : "") + text + "\n")
        lineOpen = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    private static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1e6)
    }
}

/// `chatterstream sha256 FILE…`: the store's own SHA-256 over files, printed like `sha256sum`
/// (for checking files by hand, and measuring the hasher).
struct HashFiles: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sha256", abstract: "Print SHA-256 digests of files, as sha256sum does.", shouldDisplay: false)

    @Argument(help: "Files to hash.")
    var files: [String]

    @Flag(help: "Also print the throughput on stderr.")
    var timing = false

    func run() throws {
        for path in files {
            let start = ContinuousClock.now
            let digest = try SHA256.hex(ofFileAt: URL(fileURLWithPath: path))
            let elapsed = ContinuousClock.now - start
            print("\(digest)  \(path)")
            if timing {
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.doubleValue ?? 0
                FileHandle.standardError.write(Data(String(format: "%.2f s, %.0f MB/s\n", seconds, size / seconds / 1e6).utf8))
            }
        }
    }
}
