import NIOCore
import Synchronization

/// Tells when the client of a connection has gone (its side closed, or the connection dropped), so a
/// synthesis nobody will hear is cancelled at once, also while it still waits in the queue or for
/// its first chunk. Sits first in the channel pipeline for one request, then is removed.
final class HangUpWatcher: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    private let onHangUp: Mutex<(@Sendable () -> Void)?>

    init(onHangUp: @escaping @Sendable () -> Void) { self.onHangUp = Mutex(onHangUp) }

    private func fire() { onHangUp.withLock { handler in let h = handler; handler = nil; return h }?() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { fire() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fire()
        context.fireChannelInactive()
    }

    /// Watches `channel` while `body` runs: `cancel` is called if the client goes first.
    static func watching<T>(_ channel: (any Channel)?, cancel: @escaping @Sendable () -> Void,
                            _ body: () async throws -> T) async throws -> T {
        guard let channel else { return try await body() }
        let watcher = HangUpWatcher(onHangUp: cancel)
        try? await channel.pipeline.addHandler(watcher, position: .first).get()
        if !channel.isActive { watcher.fire() }
        defer { channel.pipeline.removeHandler(watcher, promise: nil) }
        return try await body()
    }
}
