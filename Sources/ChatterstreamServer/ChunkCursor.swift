import Chatterstream

/// A synthesis stream's iterator that can be handed from the request handler (which takes the
/// first chunk, so that an error still gets its proper status) to the response body writer or the
/// HLS task that takes the rest.
///
/// `@unchecked Sendable`: the iterator is used by one task at a time, in sequence (handler, then
/// writer), never concurrently. Releasing the cursor releases the stream, which cancels the run.
final class ChunkCursor: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<AudioChunk, Error>.AsyncIterator

    init(_ stream: AsyncThrowingStream<AudioChunk, Error>) {
        iterator = stream.makeAsyncIterator()
    }

    /// The next chunk, nil at the end of the stream (or once the consuming task is cancelled).
    func next() async throws -> AudioChunk? {
        try await iterator.next()
    }
}
