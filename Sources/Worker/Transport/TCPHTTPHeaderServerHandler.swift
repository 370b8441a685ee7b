import Foundation
import Logging
import NIOCore

/// Server side of the tcp HTTP disguise (TCPHTTPHeader): reads and checks the client's fake request
/// head, passes what follows it on, and writes the fake response head in front of the first bytes the
/// protocol handler writes.
///
///   [TLS] → TCPHTTPHeaderServerHandler → protocol handler      (removes itself once both heads are done)
///
/// The protocol handler is in the pipeline from the start (it sees channelActive at accept, as on plain
/// tcp) but gets no byte before a good head. Bytes behind the head in the same read are passed on in
/// the same event, never held back or cut. A refused head gets a 404 (wrong path) or 400 (anything
/// else, the 4 s deadline included) and the connection closes; nothing reaches the protocol handler.
/// Like V2Ray, a connection that the protocol side closes before it wrote anything (a failed VMess
/// handshake after a good head) gets the 400 on its way out.
final class TCPHTTPHeaderServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The same deadline as the ws/httpupgrade request head. V2Ray reads this head under its VMess
    /// handshake deadline (policy `handshake`), which may be far longer; a head comes in one segment,
    /// so 4 s costs a real client nothing and bounds how long a silent one holds the connection.
    static let handshakeTimeout = ServerUpgradeHandler.handshakeTimeout

    private enum State { case readingHead, streaming, refused }

    private let header: TCPHTTPHeader
    private let logger: Logger
    private var state = State.readingHead
    /// The response head, or a refusal, has been written: nothing more to put in front of the stream.
    private var answered = false
    private var pending: [UInt8] = []
    private var scanned = 0
    private var timeout: Scheduled<Void>?

    init(header: TCPHTTPHeader, logger: Logger) {
        self.header = header
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.scheduleTask(in: Self.handshakeTimeout) { [weak self] in
            guard let self, self.state == .readingHead else { return }
            self.refuse(.badRequest, context: context, reason: "no request head within the handshake timeout")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        context.fireChannelInactive()
    }

    // MARK: the request head

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .streaming: return context.fireChannelRead(data)
        case .refused: return  // discarded until the close
        case .readingHead: break
        }
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        do {
            guard let head = try HTTPHeadLines.parse(&pending, scanned: &scanned, limit: TCPHTTPHeader.maximumHead) else {
                if TCPHTTPHeader.startLineIsBad(pending) == true {
                    refuse(.badRequest, context: context, reason: "bad request line")
                }
                return
            }
            if case .refuse(let refusal) = header.check(head) {
                return refuse(refusal, context: context, reason: String(head.startLine.prefix(80)))
            }
        } catch {
            return refuse(.badRequest, context: context, reason: "\(error)")
        }
        state = .streaming
        timeout?.cancel()
        let rest = pending
        pending = []
        if !rest.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest))) }
        removeIfDone(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, state != .streaming {
            // The client stopped sending before its head was complete (V2Ray: EOF, answered 400).
            if state == .readingHead { refuse(.badRequest, context: context, reason: "end of stream inside the request head") }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if state == .readingHead {
            logger.debug("tcp http header: error before the request head: \(error)")
            state = .refused
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    // MARK: the response head

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !answered {
            answered = true
            var random = SystemRandomNumberGenerator()
            let head = header.responseHead(now: Self.now(), using: &random)
            context.write(wrapOutboundOut(context.channel.allocator.buffer(string: head)), promise: nil)
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        // Not in write(): leaving the pipeline there loses the flush that follows it.
        removeIfDone(context: context)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !answered, mode != .input {
            // Closed by the protocol side before it answered anything (V2Ray's Conn.Close writes 400).
            answered = true
            state = .refused
            timeout?.cancel()
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(
                string: TCPHTTPHeader.refusalHead(.badRequest, now: Self.now()))), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: pieces

    private func refuse(_ refusal: UpgradeRequestCheck.Refusal, context: ChannelHandlerContext, reason: String) {
        state = .refused
        answered = true
        pending = []
        timeout?.cancel()
        logger.debug("refused tcp http header", metadata: ["status": "\(refusal.statusLine)", "request": "\(reason)"])
        let text = TCPHTTPHeader.refusalHead(refusal, now: Self.now())
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// Both heads done: the handler has nothing left to do on this connection.
    private func removeIfDone(context: ChannelHandlerContext) {
        guard state == .streaming, answered else { return }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}
