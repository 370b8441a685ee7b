import NIOCore

/// The target side of a relayed TCP connection. Passes what the target sends to the inbound's
/// sink, and holds the target's reads while the client cannot take more (backpressure: no queue
/// grows without bound; what NIO reads unasked at the target's EOF waits in `hold`).
final class TargetRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var sink: DownstreamSink?
    private var context: ChannelHandlerContext?
    let hold: ReadHold
    private var finished = false

    init(sink: DownstreamSink, hold: ReadHold = ReadHold()) {
        self.sink = sink
        self.hold = hold
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    private var sinkOpen: Bool { sink?.downstreamWritable ?? true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch hold.admit(buffer, open: sinkOpen) {
        case .pass: sink?.downstream(&buffer)
        case .kept: break
        case .refused:
            ended(error: true)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { sink?.flushDownstream() }

    /// The target's input is over: after whatever `hold` still keeps, when `error` is false.
    private func ended(error: Bool) {
        if error {
            hold.discard()
        } else if !hold.admitEnd() {
            return
        }
        finish(error: error)
    }

    private func finish(error: Bool) {
        guard !finished else { return }
        finished = true
        sink?.downstreamFinished(error: error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            ended(error: false)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { ended(error: false) }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        ended(error: true)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    /// Reads are only passed on while the client side can take more.
    func read(context: ChannelHandlerContext) {
        hold.read(context: context, open: sinkOpen)
    }

    /// The client side can take more (its socket drained, or a rate hold ended).
    func resumeReads() {
        let delivered = hold.resume(context: context, open: { sinkOpen }, deliver: { buffer in
            sink?.downstream(&buffer)
        }, end: { finish(error: false) })
        if delivered { sink?.flushDownstream() }
    }
}
