import Chatterstream
import Synchronization

/// A synthesis stream's iterator that can be handed from the request handler (which takes the
/// first chunk, so that an error still gets its proper status) to the response body writer or the
/// HLS task that takes the rest, and cancelled from anywhere (a client hanging up, a cap reached).
///
/// `@unchecked Sendable`: the iterator is used by one task at a time, in sequence (handler, then
/// writer), never concurrently; the cancellation state is behind a mutex. Cancelling, or releasing
/// the cursor, ends the stream, which cancels the run (also one still waiting in the queue).
final class ChunkCursor: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<AudioChunk, Error>.AsyncIterator
    private let waiting = Mutex<(cancelled: Bool, task: Task<AudioChunk?, Error>?)>((false, nil))

    init(_ stream: AsyncThrowingStream<AudioChunk, Error>) {
        iterator = stream.makeAsyncIterator()
    }

    /// The next chunk, nil at the end of the stream (or once cancelled).
    func next() async throws -> AudioChunk? {
        let task = Task { try await self.step() }
        let cancelled = waiting.withLock { state in
            state.task = task
            return state.cancelled
        }
        if cancelled { task.cancel() }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    private func step() async throws -> AudioChunk? { try await iterator.next() }

    /// Ends the stream: the chunk being awaited (if any) and every later one come back nil.
    func cancel() {
        waiting.withLock { state in
            state.cancelled = true
            return state.task
        }?.cancel()
    }

    var isCancelled: Bool { waiting.withLock { $0.cancelled } }
}
