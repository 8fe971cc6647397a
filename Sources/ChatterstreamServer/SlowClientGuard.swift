import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client sends its request too slowly: the defence against slowloris
/// clients, which the idle timeout alone does not give (a byte every few seconds keeps a connection
/// from ever being idle), in the manner of Apache's mod_reqtimeout.
///
/// - The request head must be complete within `headTimeout` of the connection opening or of the
///   previous response ending (so a keep-alive connection with no next request is closed by then too).
/// - The body then gets the same time again, plus a second for each `minimumBodyBytesPerSecond`
///   bytes received: a client sending at least that rate is never cut, whatever the body's size.
/// - While a response is written the guard is off: the write timeout covers a client that stops
///   reading.
///
/// It sits after Hummingbird's HTTP codec, so it sees request parts, not bytes: a head trickled byte
/// by byte counts from when the previous one ended, which is what the deadline is about.
final class SlowClientGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Limits: Sendable {
        var headTimeout: TimeAmount
        var minimumBodyBytesPerSecond: Int
    }

    private let limits: Limits
    private let logger: Logger
    /// When the request being read must be complete; nil while a response is being written.
    private var deadline: NIODeadline?
    /// The one check scheduled at a time (at `deadline` or earlier; moved on when the deadline moved).
    private var check: Scheduled<Void>?

    init(limits: Limits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { awaitRequest(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        awaitRequest(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            setDeadline(.now() + limits.headTimeout, context)
        case let .body(buffer):
            if let deadline, limits.minimumBodyBytesPerSecond > 0 {
                let allowance = TimeAmount.nanoseconds(Int64(buffer.readableBytes) * 1_000_000_000 / Int64(limits.minimumBodyBytesPerSecond))
                self.deadline = deadline + allowance
            }
        case .end:
            stop()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        // The response is complete: the next request's head is awaited from when it is written.
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenSuccess { [self] _ in
            if context.channel.isActive { awaitRequest(context) }
        }
        context.write(data, promise: written)
    }

    private func awaitRequest(_ context: ChannelHandlerContext) {
        setDeadline(.now() + limits.headTimeout, context)
    }

    private func setDeadline(_ deadline: NIODeadline, _ context: ChannelHandlerContext) {
        self.deadline = deadline
        check?.cancel()
        schedule(at: deadline, context)
    }

    private func schedule(at instant: NIODeadline, _ context: ChannelHandlerContext) {
        check = context.eventLoop.assumeIsolated().scheduleTask(deadline: instant) { [self] in
            guard let deadline else { return }
            if deadline > .now() {
                schedule(at: deadline, context)  // body bytes moved it on
                return
            }
            logger.notice("closing a connection whose client sent its request too slowly", metadata: [
                "remote": "\(context.channel.remoteAddress?.description ?? "?")"])
            stop()
            context.close(promise: nil)
        }
    }

    private func stop() {
        deadline = nil
        check?.cancel()
        check = nil
    }
}
