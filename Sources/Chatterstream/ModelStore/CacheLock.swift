import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory `flock` on a file in the cache, so two processes never write the same partial
/// download. The kernel drops it if the process dies, so a crash never leaves the cache locked.
struct CacheLock: Sendable {
    private let descriptor: Int32

    static func acquire(_ url: URL, progress: @Sendable (ModelStoreEvent) -> Void) async throws -> CacheLock {
        try ModelStore.createDirectory(url.deletingLastPathComponent())
        let descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ModelStoreError.io(path: url.path, reason: String(cString: strerror(errno)))
        }
        var announced = false
        // Poll rather than block, so waiting never parks a thread of the cooperative pool.
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw ModelStoreError.io(path: url.path, reason: reason)
            }
            if !announced {
                progress(.waitingForLock(path: url))
                announced = true
            }
            do {
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                close(descriptor)
                throw error
            }
        }
        return CacheLock(descriptor: descriptor)
    }

    func release() {
        _ = flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
