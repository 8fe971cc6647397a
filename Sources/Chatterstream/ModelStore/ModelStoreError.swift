import ChatterModels
import Foundation

/// Why the model store could not produce a cached model. Every message says what to do next.
public enum ModelStoreError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// HTTP 401/403. `tokenSent` tells a missing token from a refused one.
    case unauthorized(repository: String, status: Int, url: String, tokenSent: Bool)
    /// HTTP 404 for a file we expect to be published.
    case notFound(repository: String, revision: String, file: String, url: String)
    /// Any other unexpected HTTP status.
    case httpStatus(status: Int, url: String)
    /// The endpoint could not be reached at all (refused, no route, DNS, timeout before any byte).
    case unreachable(endpoint: String, reason: String)
    /// `HF_HUB_OFFLINE` is set and the model is not cached.
    case offlineNotCached(family: ModelFamily, revision: String, path: String)
    /// A downloaded file's size is none of its published sizes. The file has been deleted.
    case sizeMismatch(file: String, expected: [Int], actual: Int64)
    /// An unpinned file (no published identity known to this build) is larger than its limit. The
    /// file has been deleted.
    case unpinnedTooLarge(file: String, limit: Int, actual: Int64)
    /// A downloaded file's sha256 is none of its published hashes. The file has been deleted.
    case hashMismatch(file: String, expected: [String], actual: String)
    /// The connection kept dropping: the partial file is kept, and the next run resumes it.
    case interrupted(file: String, attempts: Int, bytesSoFar: Int64, reason: String)
    /// The server answered something a download cannot use (e.g. a Content-Range for other bytes).
    case badResponse(file: String, url: String, reason: String)
    /// `HF_ENDPOINT` (or the resulting URL) is not an http(s) URL.
    case invalidEndpoint(String)
    /// A revision or file name that cannot name a cache directory safely.
    case invalidName(String)
    /// Reading or writing the cache failed.
    case io(path: String, reason: String)
    /// The converter hook threw.
    case conversionFailed(family: ModelFamily, reason: String)
    /// The Perth watermarker's checkpoint is not installed and could not be.
    case perthUnavailable(reason: String)
    /// spacy-pkuseg's model (Chinese word segmentation) is not installed and could not be.
    case pkusegUnavailable(reason: String)

    public var description: String {
        switch self {
        case let .unauthorized(repository, status, url, tokenSent):
            if tokenSent {
                return "the hub refused the token (HTTP \(status)) for \(url): set HF_TOKEN to a token with access to \(repository)"
                    + " (for a gated repository, accept its terms on the hub first)"
            }
            return "the hub refused (HTTP \(status)) \(url): set HF_TOKEN to a token with access to \(repository)"
        case let .notFound(repository, revision, file, url):
            return "\(file) was not found in \(repository) at revision \(revision) (HTTP 404, \(url)):"
                + " check --revision, and that HF_ENDPOINT points at a Hugging Face hub or mirror"
        case let .httpStatus(status, url):
            return "the hub answered HTTP \(status) for \(url): try again later, or check HF_ENDPOINT"
        case let .unreachable(endpoint, reason):
            return "cannot reach \(endpoint) (\(reason)): check your connection, or set HF_ENDPOINT"
                + " / use HF_HUB_OFFLINE=1 with a cached model"
        case let .offlineNotCached(family, revision, path):
            return "HF_HUB_OFFLINE is set and \(family.rawValue) (revision \(revision)) is not in the cache at \(path);"
                + " run `chatterstream download --model \(family.rawValue)` on a machine with network"
                + " (and copy the cache here), or unset HF_HUB_OFFLINE"
        case let .sizeMismatch(file, expected, actual):
            return "\(file) has \(actual) bytes but the published file has \(expected.map(String.init).joined(separator: " or "))"
                + " bytes; the download was deleted: run again, and if it repeats the mirror (HF_ENDPOINT) serves a different file"
        case let .unpinnedTooLarge(file, limit, actual):
            return "\(file) has \(actual) bytes, more than the \(limit) this build accepts for a file whose published size it does"
                + " not know; the download was deleted: check HF_ENDPOINT and --revision, and if the hub's file really is this"
                + " large, this build needs its published size and sha256"
        case let .hashMismatch(file, expected, actual):
            return "\(file) has sha256 \(actual) but the published file has \(expected.joined(separator: " or "));"
                + " the download was deleted: run again, and if it repeats the mirror (HF_ENDPOINT) serves a different file"
        case let .interrupted(file, attempts, bytesSoFar, reason):
            return "the download of \(file) was interrupted \(attempts) times (\(reason)); \(bytesSoFar) bytes are kept"
                + " and the next run resumes from there"
        case let .badResponse(file, url, reason):
            return "unusable answer for \(file) from \(url): \(reason)"
        case let .invalidEndpoint(endpoint):
            return "HF_ENDPOINT '\(endpoint)' is not an http(s) URL"
        case let .invalidName(name):
            return "'\(name)' cannot be used as a revision or file name (empty, absolute, or containing '..')"
        case let .io(path, reason):
            return "cannot write the model cache at \(path): \(reason) (check free space and permissions, or set HF_HOME)"
        case let .perthUnavailable(reason):
            return "the Perth watermarker's checkpoint is missing: \(reason); run on a machine with network once"
                + " (or tools/perth/fetch-checkpoint.sh, or set CHATTERSTREAM_PERTH_CHECKPOINT), or turn watermarking off"
                + " explicitly (watermark: false, --no-watermark)"
        case let .pkusegUnavailable(reason):
            return "spacy-pkuseg's model for Chinese word segmentation is missing: \(reason); run on a machine with network once"
                + " (or tools/pkuseg/fetch-model.sh, or set \(PkusegModelLocation.environmentVariable) to a folder holding"
                + " \(PkusegModelLocation.requiredFileNames.joined(separator: ", "))); without it Chinese text is coded unsegmented"
        case let .conversionFailed(family, reason):
            return "converting the downloaded \(family.rawValue) checkpoint failed: \(reason)"
        }
    }

    public var errorDescription: String? { description }
}
