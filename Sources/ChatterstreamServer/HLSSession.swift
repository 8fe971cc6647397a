import ChatterAudio
import Chatterstream
import Foundation
import Synchronization

/// One HLS rendition being made: synthesis runs in a background task that feeds an `HLSSegmenter`
/// (owned by that task alone) and publishes each new segment and the playlist so far, which clients
/// read while it grows.
final class HLSSession: Sendable {
    let id: String

    enum Phase: Sendable, Equatable {
        case running
        case finished(at: ContinuousClock.Instant)
        case failed(APIError, at: ContinuousClock.Instant)
    }

    private struct Published {
        var segments: [Data] = []
        var playlist: String
        var phase = Phase.running
        var task: Task<Void, Never>?
    }

    private let published: Mutex<Published>
    private let cursor = Mutex<ChunkCursor?>(nil)

    init(id: String, emptyPlaylist: String) {
        self.id = id
        published = Mutex(Published(playlist: emptyPlaylist))
    }

    var phase: Phase { published.withLock { $0.phase } }
    var playlist: String { published.withLock { $0.playlist } }
    func segment(_ index: Int) -> Data? {
        published.withLock { $0.segments.indices.contains(index) ? $0.segments[index] : nil }
    }

    /// When the session stopped changing (nil while running).
    var endedAt: ContinuousClock.Instant? {
        switch phase {
        case .running: nil
        case let .finished(at), let .failed(_, at): at
        }
    }

    /// Segment URIs are relative to the playlist, so they resolve under `/v1/hls/<id>/`.
    static func segmentURI(_ index: Int) -> String { "\(index).ts" }

    /// Consumes `stream` in the background: every chunk goes through the segmenter and what it
    /// completes is published at once; the end (or an error) finalizes the playlist. `firstChunk`
    /// was already taken from `cursor` (to answer errors with the right status before the 201).
    /// A session whose audio passes `maxSeconds` or whose PCM passes `maxBytes` is stopped (its
    /// synthesis cancelled) and fails with a 413 that says which cap it reached.
    func start(cursor: ChunkCursor, firstChunk: AudioChunk, segmenter: sending HLSSegmenter, maxBytes: Int, maxSeconds: Double) {
        self.cursor.withLock { $0 = cursor }
        let task = Task { [self] in
            do {
                var chunk: AudioChunk? = firstChunk
                var bytes = 0
                while let current = chunk {
                    bytes += current.pcm.count
                    let seconds = Double(bytes / 2) / Double(current.sampleRate)
                    if bytes > maxBytes || seconds > maxSeconds {
                        cursor.cancel()
                        throw APIError(.contentTooLarge, "the HLS session reached its cap (\(maxBytes) bytes of audio, \(Int(maxSeconds)) s): shorten the text or split it over several sessions")
                    }
                    if try !segmenter.addSegment(pcm16LittleEndian: current.pcm).isEmpty { publish(segmenter) }
                    chunk = try await cursor.next()
                }
                if cursor.isCancelled { throw StreamingTTSError.cancelled }
                // A cancelled consumer sees the stream end early: that is no complete rendition.
                guard !Task.isCancelled else { throw StreamingTTSError.cancelled }
                try segmenter.finalize()
                publish(segmenter)
                published.withLock { $0.phase = .finished(at: .now) }
            } catch {
                let failure = APIError(classifying: error)
                published.withLock { $0.phase = .failed(failure, at: .now) }
            }
        }
        published.withLock { $0.task = task }
    }

    private func publish(_ segmenter: HLSSegmenter) {
        let playlist = segmenter.playlist(segmentURI: Self.segmentURI)
        // Only this session's task appends, so the count cannot change between the two locks.
        let known = published.withLock { $0.segments.count }
        let fresh = (known..<segmenter.segmentCount).compactMap { segmenter.segment(at: $0) }
        published.withLock {
            $0.segments.append(contentsOf: fresh)
            $0.playlist = playlist
        }
    }

    /// Stops the synthesis (an evicted session, or the server stopping).
    func cancel() {
        cursor.withLock { $0 }?.cancel()
        published.withLock { $0.task }?.cancel()
    }

    /// Bytes of segments kept.
    var storedBytes: Int { published.withLock { $0.segments.reduce(0) { $0 + $1.count } } }
}
