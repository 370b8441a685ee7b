import NIOCore
import NIOSSL
import NIOTLS

/// Sits right behind the TLS client handler and reports the end of the handshake: `ready` succeeds
/// on TLSUserEvent.handshakeCompleted, fails on an error, on close or at `timeout`. Then it leaves
/// the pipeline (it has nothing to do with the stream).
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    struct Timeout: Error, CustomStringConvertible {
        var description: String { "TLS handshake timed out" }
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the connection closed during the TLS handshake" }
    }

    private let ready: EventLoopPromise<Void>
    private let timeoutAmount: TimeAmount
    private var timeout: Scheduled<Void>?

    init(ready: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.ready = ready
        self.timeoutAmount = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let ready = self.ready
        timeout = context.eventLoop.scheduleTask(in: timeoutAmount) {
            ready.fail(Timeout())
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        // A connect that failed never gets channelInactive; no-op after success.
        ready.fail(Closed())
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            timeout?.cancel()
            ready.succeed(())
            context.fireUserInboundEventTriggered(event)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        ready.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(Closed())
        context.fireChannelInactive()
    }
}
