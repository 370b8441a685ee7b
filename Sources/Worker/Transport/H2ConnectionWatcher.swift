import Logging
import NIOCore
import NIOHTTP2

/// The connection-level companion of H2StreamHandler on a server: counts the open streams (as the
/// NIOHTTP2Handler's stream delegate) and closes the connection when it has none and
///   - the worker drains (after a GOAWAY, so the client opens its next stream elsewhere), or
///   - it stayed without a stream for `idleTimeout` (from accept on, so a client that completes TLS
///     and then sends nothing does not hold a connection slot for long).
/// It also closes the connection when the peer ends its side of TCP: HTTP/2 has no use for a
/// half-closed connection, and the accepted sockets allow remote half-closure (for the relays), so
/// without this a client that left would hold its slot until the idle timeout.
/// Sits behind the NIOHTTP2Handler and passes everything through. Clients (H2ConnectionPool) use it
/// for that duty and the next only (`idleTimeout` nil, no drain signal, not the stream delegate).
///
/// A frame the peer should not have sent that NIO takes as a connection error (V2Ray 4.45's client
/// (Go's http2) sends an END_STREAM DATA frame on a stream right after resetting it — RFC 9113 §5.1
/// calls that a stream error; NIO answers GOAWAY) makes NIO stop parsing the bytes it has, "the
/// connection is going away anyway". The frames behind the bad one, other streams' data among them,
/// then wait for the peer's next bytes, which may not come: those streams stall until the client
/// gives up. After such an error the watcher lets NIO go on with what it holds, as Go's server goes
/// on with the connection; the GOAWAY already sent moves new streams to a new connection, and this
/// one ends like any other. A peer that keeps doing it (`maximumConnectionErrors`), and any frame
/// that could not be parsed at all, get the connection closed instead.
final class H2ConnectionWatcher: ChannelInboundHandler, NIOHTTP2StreamDelegate, @unchecked Sendable {
    typealias InboundIn = HTTP2Frame

    /// grpc-go's and Go's servers keep idle connections much longer; a minute is enough for a client
    /// to reuse its connection between streams and short enough to free the slot of a silent one.
    static let idleTimeout = TimeAmount.seconds(60)

    private let drain: DrainSignal?
    private let idleTimeout: TimeAmount?
    private var open = 0
    private var context: ChannelHandlerContext?
    private var idleTimer: Scheduled<Void>?
    private var goingAway = false
    private var connectionErrors = 0
    static let maximumConnectionErrors = 16

    init(drain: DrainSignal?, idleTimeout: TimeAmount? = H2ConnectionWatcher.idleTimeout) {
        self.drain = drain
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer()
        drain?.observe(self) { [weak self] in self?.goAway() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        drain?.stopObserving(self)
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.fireErrorCaught(error)
        guard context.channel.isActive else { return }
        connectionErrors += 1
        // The framing itself is broken: nothing after it can be trusted.
        let unparsable = error is NIOHTTP2Errors.UnableToParseFrame || error is NIOHTTP2Errors.BadClientMagic
            || error is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock || error is NIOHTTP2Errors.ExcessiveContinuationFrames
        if unparsable || connectionErrors > Self.maximumConnectionErrors {
            context.close(promise: nil)
            return
        }
        // NIO has sent its GOAWAY: the peer opens new streams elsewhere. The connection is left to
        // end as any other (idle timeout, drain): closing it when its streams are done would race a
        // stream the peer opened before it read the GOAWAY (grpc-go then fails it mid-transfer).
        // Out of NIO's decode loop (this runs inside it), then on with the bytes it holds.
        let channel = context.channel
        context.eventLoop.execute {
            guard channel.isActive,
                  let http2 = try? channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self),
                  let http2Context = try? channel.pipeline.syncOperations.context(handlerType: NIOHTTP2Handler.self)
            else { return }
            http2.channelRead(context: http2Context, data: NIOAny(channel.allocator.buffer(capacity: 0)))
            http2.channelReadComplete(context: http2Context)
        }
    }

    // Called on the event loop by NIOHTTP2Handler.
    func streamCreated(_ id: HTTP2StreamID, channel: Channel) {
        open += 1
        idleTimer?.cancel()
        idleTimer = nil
    }

    func streamClosed(_ id: HTTP2StreamID, channel: Channel) {
        open -= 1
        guard open == 0 else { return }
        if goingAway {
            context?.close(promise: nil)
        } else {
            armIdleTimer()
        }
    }

    private func armIdleTimer() {
        guard let context, let idleTimeout else { return }
        idleTimer?.cancel()
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) { [weak self] in
            guard let self, self.open == 0 else { return }
            self.goAway()
        }
    }

    private func goAway() {
        guard let context, !goingAway else { return }
        goingAway = true
        let frame = HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil))
        context.writeAndFlush(NIOAny(frame), promise: nil)
        if open == 0 { context.close(promise: nil) }
    }
}
