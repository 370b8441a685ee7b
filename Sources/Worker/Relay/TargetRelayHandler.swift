import NIOCore

/// The target side of a relayed TCP connection. Passes what the target sends to the VMess handler,
/// and holds the target's reads while the client cannot take more (backpressure, no unbounded queue).
final class TargetRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var peer: VMessServerHandler?
    private var context: ChannelHandlerContext?
    private var heldRead = false

    init(peer: VMessServerHandler) { self.peer = peer }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        peer?.downstream(&buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flushDownstream() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            peer?.targetFinished(error: false)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.targetFinished(error: false)
        peer?.targetClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        peer?.targetFinished(error: true)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { peer?.resumeClientReads() }
        context.fireChannelWritabilityChanged()
    }

    /// Reads are only passed on while the client side can take more.
    func read(context: ChannelHandlerContext) {
        if peer?.clientWritable ?? true {
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
