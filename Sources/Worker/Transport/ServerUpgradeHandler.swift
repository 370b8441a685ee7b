import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Server side of the ws and httpupgrade transports: reads the upgrade request head, answers it, and
/// puts the stream in its own place.
///
///   before:  [TLS] → ServerUpgradeHandler
///   after:   [TLS] → (ws: WebSocketFrameDecoder → WebSocketStreamHandler) → protocol handler
///
/// The stream's first bytes, in order: early data from the request (§12.1 header or path form, §12.2
/// v2fly header), then whatever the client sent behind its request head before our 101 (Xray's
/// httpupgrade client pipelines), then the rest. This handler reads the head itself (HTTPHeadLines)
/// rather than through NIO's HTTP decoder: that decoder hands its leftover bytes over in a later
/// event-loop task and drops them if the client's FIN is processed first, which a pipelining client
/// that half-closes early would hit. The response is written as bytes: 101 or a refusal.
final class ServerUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Both reference servers give the client 4 s for its request head (§12.1, §13).
    static let handshakeTimeout = TimeAmount.seconds(4)
    /// Largest incoming WebSocket frame payload. VMess chunks are ≤ 16 KiB + overhead and clients
    /// send one chunk or one write per message; 1 MiB leaves room without letting a peer make us
    /// buffer arbitrary amounts.
    static let maximumFrameSize = 1 << 20
    /// Request heads (request line and headers) larger than this are refused with 400. Xray allows
    /// 8192 + Go's 4096 slack for WebSocket and 12288 for httpupgrade; a path-form ED of 2048 bytes
    /// takes about 2.7 KiB of it.
    static let maximumRequestHead = 12 * 1024

    private enum State { case readingHead, refused, done }

    private let check: UpgradeRequestCheck
    private let installProtocol: (Channel) throws -> Void
    private let logger: Logger
    private var state = State.readingHead
    private var pending: [UInt8] = []
    private var scanned = 0
    private var timeout: Scheduled<Void>?

    init(check: UpgradeRequestCheck, logger: Logger, installProtocol: @escaping (Channel) throws -> Void) {
        self.check = check
        self.logger = logger
        self.installProtocol = installProtocol
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timeout = context.eventLoop.scheduleTask(in: Self.handshakeTimeout) { [weak self] in
            guard let self, self.state == .readingHead else { return }
            // Closed without an answer, like the reference servers' read deadline.
            self.state = .done
            self.logger.debug("transport handshake timeout")
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .readingHead else { return }  // refused: the rest is discarded until the close
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        let head: HTTPRequestHead
        do {
            guard let lines = try HTTPHeadLines.parse(&pending, scanned: &scanned, limit: Self.maximumRequestHead) else {
                return
            }
            head = try lines.requestHead()
        } catch {
            return refuse(.badRequest, context: context, reason: "\(error)")
        }
        switch check.decide(head) {
        case .refuse(let refusal):
            refuse(refusal, context: context, reason: "\(head.method) \(head.uri.prefix(64))")
        case .upgrade(let earlyData, let headers):
            do {
                try upgrade(context: context, earlyData: earlyData, responseHeaders: headers)
            } catch {
                logger.debug("upgrade failed: \(error)")
                context.close(promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, state == .readingHead {
            // The client finished sending before its request was complete: nothing to answer.
            state = .done
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("transport error before upgrade: \(error)")
        state = .done
        context.close(promise: nil)
    }

    private func refuse(_ refusal: UpgradeRequestCheck.Refusal, context: ChannelHandlerContext, reason: String) {
        state = .refused
        pending = []
        timeout?.cancel()
        logger.debug("refused transport request", metadata: ["status": "\(refusal.statusLine)", "request": "\(reason)"])
        let text = "HTTP/1.1 \(refusal.statusLine)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text))).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private func upgrade(context: ChannelHandlerContext, earlyData: [UInt8],
                         responseHeaders: [UpgradeRequestCheck.HeaderField]) throws {
        state = .done
        timeout?.cancel()
        var response = "HTTP/1.1 101 Switching Protocols\r\n"
        for field in responseHeaders { response += "\(field.name): \(field.value)\r\n" }
        response += "\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: response)), promise: nil)

        let pipeline = context.pipeline.syncOperations
        var stream: WebSocketStreamHandler?
        if case .webSocket = check.kind {
            let handler = WebSocketStreamHandler(role: .server)
            try pipeline.addHandlers([ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: Self.maximumFrameSize)),
                                      handler], position: .after(self))
            stream = handler
        }
        // The protocol handler goes last, i.e. right behind the stream handlers.
        try installProtocol(context.channel)
        // It joined an active channel, so it has not seen channelActive (it counts connections there).
        if let stream {
            try pipeline.context(handler: stream).fireChannelActive()
            if !earlyData.isEmpty { stream.deliver(earlyData) }
        } else {
            context.fireChannelActive()
            if !earlyData.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: earlyData))) }
        }
        // Bytes behind the head: WebSocket frames (into the frame decoder) or raw stream bytes.
        let rest = pending
        pending = []
        if !rest.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest))) }
        if !rest.isEmpty || (stream == nil && !earlyData.isEmpty) { context.fireChannelReadComplete() }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
