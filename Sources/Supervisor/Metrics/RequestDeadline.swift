// A request to the metrics endpoint must arrive whole within `limit` of its first byte. The idle
// timeout alone would let a client dribble a header one byte every few seconds and hold one of the
// endpoint's few connections for ever (slowloris); with the connection cap, a handful of such
// clients would lock the scraper out. Sits before the HTTP decoder (it sees raw bytes) and is told
// by MetricsHTTPHandler when a request has been read whole.

import NIOCore

final class RequestDeadline: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let limit = TimeAmount.seconds(10)

    private var timer: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if timer == nil {
            let channel = context.channel
            timer = context.eventLoop.scheduleTask(in: Self.limit) { channel.close(promise: nil) }
        }
        context.fireChannelRead(data)
    }

    /// The request is in: the clock stops until the next one's first byte.
    func requestComplete() {
        timer?.cancel()
        timer = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) { requestComplete() }
}
