import NIOCore

/// The target side of a relayed TCP connection. Passes what the target sends to the inbound's
/// sink, and holds the target's reads while the client cannot take more (backpressure: no queue
/// grows without bound).
final class TargetRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var sink: DownstreamSink?
    private var context: ChannelHandlerContext?
    private var heldRead = false
    private var finished = false

    init(sink: DownstreamSink) { self.sink = sink }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        sink?.downstream(&buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) { sink?.flushDownstream() }

    private func finish(error: Bool) {
        guard !finished else { return }
        finished = true
        sink?.downstreamFinished(error: error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            finish(error: false)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { finish(error: false) }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(error: true)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    /// Reads are only passed on while the client side can take more.
    func read(context: ChannelHandlerContext) {
        if sink?.downstreamWritable ?? true {
            context.read()
        } else {
            heldRead = true
        }
    }

    func resumeReads() {
        guard heldRead, let context else { return }
        heldRead = false
        context.read()
    }
}
