import NIOCore
import NIOWebSocket

/// Client side of the ws and httpupgrade transports: sends the upgrade request, reads the 101, then
/// puts the stream handlers in its place (nothing for httpupgrade, WebSocket framing for ws).
///
///   before:  [TLS] → ClientUpgradeHandler → protocol handlers
///   after:   [TLS] → (ws: WebSocketFrameDecoder → WebSocketStreamHandler) → protocol handlers
///
/// The protocol handlers are in the pipeline from the start and may write at once: writes are held
/// here until the 101 (except that, with early data configured, the first write's leading bytes ride
/// inside the request, and httpupgrade in pipelined mode sends everything straight away). Bytes that
/// arrive behind the 101 in the same read are the stream's first bytes and are passed on, not lost.
final class ClientUpgradeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Failure: Error, CustomStringConvertible {
        case closedDuringHandshake
        case timeout
        case badResponse(String)
        var description: String {
            switch self {
            case .closedDuringHandshake: "the server closed the connection during the transport handshake"
            case .timeout: "no upgrade response in time"
            case .badResponse(let s): s
            }
        }
    }

    private enum State { case idle, awaitingResponse, pipelining, upgraded, failed }

    private let request: ClientUpgradeRequest
    private let ready: EventLoopPromise<Void>
    private let timeoutAmount: TimeAmount
    private var state = State.idle
    private var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var response: [UInt8] = []
    private var scanned = 0
    private var timeout: Scheduled<Void>?

    /// `ready` succeeds once the stream is usable (after the 101), or fails with the reason.
    init(request: ClientUpgradeRequest, ready: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.request = request
        self.ready = ready
        self.timeoutAmount = timeout
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Removed after the upgrade (ready already succeeded), or torn down with a channel that
        // closed or never connected: no promise may be left open.
        timeout?.cancel()
        ready.fail(Failure.closedDuringHandshake)
        failHeld(Failure.closedDuringHandshake)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !request.waitsForFirstWrite { sendRequest(context: context, early: []) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closedDuringHandshake, context: context)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if state != .upgraded, state != .failed {
            state = .failed
            timeout?.cancel()
            ready.fail(error)
            failHeld(error)
        }
        context.fireErrorCaught(error)
    }

    // MARK: writes before the 101

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        switch state {
        case .idle where request.waitsForFirstWrite:
            let early = buffer.readBytes(length: min(buffer.readableBytes, request.earlyDataLimit)) ?? []
            sendRequest(context: context, early: early)
            if buffer.readableBytes > 0 || promise != nil { hold(buffer, promise, context: context) }
        case .pipelining, .upgraded:
            context.write(data, promise: promise)
        case .failed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        default:
            hold(buffer, promise, context: context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        // Held writes are flushed with the upgrade; the request itself is flushed when sent.
        if state == .pipelining || state == .upgraded { context.flush() }
    }

    private func hold(_ buffer: ByteBuffer, _ promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        if state == .pipelining {
            context.write(wrapOutboundOut(buffer), promise: promise)
        } else {
            held.append((buffer, promise))
        }
    }

    private func sendRequest(context: ChannelHandlerContext, early: [UInt8]) {
        guard state == .idle else { return }
        state = request.earlyData == .pipelined ? .pipelining : .awaitingResponse
        // The answer is due from now on; before the first write (early data) nothing was asked yet.
        timeout = context.eventLoop.scheduleTask(in: timeoutAmount) { [weak self] in
            self?.fail(.timeout, context: context)
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request.head(early: early))), promise: nil)
        if state == .pipelining {
            // Xray's httpupgrade ED: everything goes out behind the head without waiting for the 101.
            let pending = held
            held = []
            for (buffer, promise) in pending { context.write(wrapOutboundOut(buffer), promise: promise) }
        }
    }

    private func failHeld(_ error: Error) {
        let pending = held
        held = []
        for (_, promise) in pending { promise?.fail(error) }
    }

    // MARK: the response

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .awaitingResponse || state == .pipelining else {
            if state == .upgraded { context.fireChannelRead(data) }
            return
        }
        var buffer = unwrapInboundIn(data)
        response += buffer.readBytes(length: buffer.readableBytes) ?? []
        let head: UpgradeResponseHead
        do {
            guard let parsed = try UpgradeResponseHead.parse(&response, scanned: &scanned) else { return }
            head = parsed
            try request.validate(head)
        } catch {
            return fail(.badResponse("\(error)"), context: context)
        }
        do {
            try upgrade(context: context)
        } catch {
            fail(.badResponse("pipeline: \(error)"), context: context)
        }
    }

    private func upgrade(context: ChannelHandlerContext) throws {
        timeout?.cancel()
        let wasPipelining = state == .pipelining
        state = .upgraded
        let pending = held
        held = []
        let rest = response
        response = []
        let pipeline = context.pipeline.syncOperations

        switch request.kind {
        case .webSocket:
            let stream = WebSocketStreamHandler(role: .client)
            try pipeline.addHandlers([ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: ServerUpgradeHandler.maximumFrameSize)),
                                      stream], position: .after(self))
            for (buffer, promise) in pending { stream.writeStream(buffer, promise: promise) }
        case .httpUpgrade:
            for (buffer, promise) in pending { context.write(wrapOutboundOut(buffer), promise: promise) }
        }
        if !pending.isEmpty || wasPipelining { context.flush() }
        ready.succeed(())
        if !rest.isEmpty {
            // The server's first stream bytes (frames for ws) came with its 101.
            context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest)))
            context.fireChannelReadComplete()
        }
        pipeline.removeHandler(context: context, promise: nil)
    }

    private func fail(_ failure: Failure, context: ChannelHandlerContext) {
        guard state != .upgraded, state != .failed else { return }
        state = .failed
        timeout?.cancel()
        ready.fail(failure)
        failHeld(failure)
        context.close(promise: nil)
    }
}
