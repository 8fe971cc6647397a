import Foundation

/// What the model store is doing, reported to a progress callback (the CLI renders it on stderr).
/// Download progress is throttled to about ten events a second per file.
public enum ModelStoreEvent: Sendable, Equatable {
    /// The model was already cached; nothing touched the network.
    case cacheHit(directory: URL)
    /// Another process holds the cache lock for this model; waiting for it.
    case waitingForLock(path: URL)
    /// A file downloaded and verified by an earlier run is reused.
    case fileAlreadyDownloaded(file: String, size: Int64)
    /// Re-hashing the bytes of a partial download before resuming it.
    case hashingPartial(file: String, bytes: Int64)
    /// Starting (or resuming, when `resumingFrom > 0`) file `index` of `count` (1-based).
    case downloadStarted(file: String, index: Int, count: Int, resumingFrom: Int64)
    /// Bytes of the file now on disk, and the full size when the server said it.
    case downloadProgress(file: String, bytes: Int64, total: Int64?)
    /// The connection dropped after some progress; retrying from `from` bytes.
    case retrying(file: String, attempt: Int, from: Int64, reason: String)
    /// The file matched a published size and sha256 and was moved into place.
    case fileVerified(file: String, size: Int64, sha256: String)
    /// A file with no published identity known to this build (`PublishedFile.isPinned` false) was
    /// accepted as downloaded, within its size limit; its size and sha256 go into the cache record.
    case fileAcceptedUnpinned(file: String, size: Int64, sha256: String)
    /// An optional file (`PublishedFile.isOptional`) is not published (HTTP 404): the model goes on without it.
    case optionalFileAbsent(file: String)
    /// Running the converter hook.
    case converting(family: ModelFamily, converter: String)
    /// The model is cached at `directory`.
    case finished(directory: URL)
}
