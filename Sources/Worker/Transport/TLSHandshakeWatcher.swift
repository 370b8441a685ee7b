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

    /// The server picked an application protocol (ALPN) other than the one the stream speaks.
    struct ProtocolMismatch: Error, CustomStringConvertible {
        var negotiated: String
        var expected: String
        var description: String { "the server chose the application protocol \(negotiated) (ALPN), not \(expected)" }
    }

    private let ready: EventLoopPromise<Void>
    private let timeoutAmount: TimeAmount
    private var timeout: Scheduled<Void>?
    /// The protocol that must be negotiated if the server picks one at all (nil: any).
    private let expectedProtocol: String?

    init(ready: EventLoopPromise<Void>, timeout: TimeAmount, expectedProtocol: String? = nil) {
        self.ready = ready
        self.timeoutAmount = timeout
        self.expectedProtocol = expectedProtocol
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
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
            timeout?.cancel()
            // A server that ignores ALPN picks nothing, and may still speak the stream's protocol;
            // one that picked another (http/1.1 from an offered list) certainly does not.
            if let expectedProtocol, let negotiated, negotiated != expectedProtocol {
                ready.fail(ProtocolMismatch(negotiated: negotiated, expected: expectedProtocol))
                context.close(promise: nil)
                return
            }
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
