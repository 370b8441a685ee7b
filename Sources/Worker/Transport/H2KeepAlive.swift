import NIOCore
import NIOHTTP2
import Shared

/// The client's HTTP/2 keep-alive (H2KeepAliveSettings): grpc-go's and Go http2's health check. A
/// connection whose server has sent nothing for `idle` seconds gets a PING; if nothing at all comes
/// back within `timeout` seconds the connection is taken for dead and closed, so the pool's next
/// dial opens a new one instead of queueing streams on a connection that will never answer (a NAT
/// that forgot the flow, a server that vanished without a FIN).
///
/// Two handlers share one H2KeepAlive: H2KeepAliveReads sits below the NIOHTTP2Handler and notes
/// every byte that arrives (stream data never reaches the connection pipeline above it);
/// H2KeepAlivePings sits above it, where it can write a PING frame. Event-loop confined.
final class H2KeepAlive: @unchecked Sendable {
    let settings: H2KeepAliveSettings
    fileprivate var lastRead = NIODeadline.now()
    /// Open streams on the connection (the pool's count), for `withoutStream`.
    var streams: () -> Int = { 0 }

    init(_ settings: H2KeepAliveSettings) { self.settings = settings }

    var idle: TimeAmount { .seconds(Int64(settings.idle)) }
    var timeout: TimeAmount { .seconds(Int64(settings.timeout)) }
}

final class H2KeepAliveReads: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let state: H2KeepAlive

    init(_ state: H2KeepAlive) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        state.lastRead = .now()
        context.fireChannelRead(data)
    }
}

final class H2KeepAlivePings: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame
    private let state: H2KeepAlive
    private var check: Scheduled<Void>?
    private var deadline: Scheduled<Void>?

    init(_ state: H2KeepAlive) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context, in: state.idle) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(context, in: state.idle)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        deadline?.cancel()
    }

    private func schedule(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        guard check == nil else { return }
        check = context.eventLoop.scheduleTask(in: delay) { [self] in
            check = nil
            tick(context)
        }
    }

    /// Once the connection has been silent for `idle`: a PING, and a deadline for any answer.
    private func tick(_ context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        let silent = now - state.lastRead
        guard silent >= state.idle else { return schedule(context, in: state.idle - silent) }
        if deadline == nil, state.settings.withoutStream || state.streams() > 0 {
            let sent = now
            let ping = HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: UInt64.random(in: 0...UInt64.max)), ack: false))
            context.writeAndFlush(wrapOutboundOut(ping), promise: nil)
            deadline = context.eventLoop.scheduleTask(in: state.timeout) { [self] in
                deadline = nil
                // Anything at all since the PING shows the server is there.
                if state.lastRead > sent { return }
                context.close(promise: nil)
            }
        }
        schedule(context, in: state.idle)
    }
}
