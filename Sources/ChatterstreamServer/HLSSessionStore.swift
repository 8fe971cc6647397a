import Foundation
import Synchronization

/// The HLS sessions the server keeps, bounded so memory is: a session is forgotten `lifetime` after
/// it ended, and when `limit` sessions exist the oldest ended one makes room (if none has ended, a
/// new one is refused with 503 rather than cutting off a live stream).
final class HLSSessionStore: Sendable {
    let limit: Int
    let lifetime: Duration
    private let sessions = Mutex<[String: HLSSession]>([:])

    init(limit: Int, lifetime: Duration) {
        self.limit = limit
        self.lifetime = lifetime
    }

    func session(_ id: String) -> HLSSession? {
        sessions.withLock { all in
            expire(&all)
            return all[id]
        }
    }

    var count: Int { sessions.withLock { all in expire(&all); return all.count } }

    /// Registers `session`, evicting the oldest ended session when full.
    func insert(_ session: HLSSession) throws(APIError) {
        let admitted = sessions.withLock { all -> Bool in
            expire(&all)
            if all.count >= limit {
                guard let oldest = all.values.filter({ $0.endedAt != nil }).min(by: { $0.endedAt! < $1.endedAt! }) else {
                    return false
                }
                all[oldest.id] = nil
            }
            all[session.id] = session
            return true
        }
        if !admitted {
            throw APIError(.serviceUnavailable, "all \(limit) HLS sessions are still being synthesised; retry when one ends", retryAfterSeconds: 5)
        }
    }

    /// Forgets a session (one that never started, or one a client deleted), cancelling its synthesis.
    @discardableResult
    func remove(_ id: String) -> Bool {
        let session = sessions.withLock { $0.removeValue(forKey: id) }
        session?.cancel()
        return session != nil
    }

    /// Stops every running session (the server is stopping).
    func cancelAll() {
        for session in sessions.withLock({ Array($0.values) }) { session.cancel() }
    }

    private func expire(_ all: inout [String: HLSSession]) {
        let now = ContinuousClock.now
        all = all.filter { _, session in session.endedAt.map { now - $0 < lifetime } ?? true }
    }
}
