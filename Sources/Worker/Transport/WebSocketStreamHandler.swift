import NIOCore
import NIOWebSocket

/// Turns WebSocket messages into the plain byte stream the protocol handlers expect, and back
/// (vmess-protocol.md §12.1: message boundaries carry no meaning).
///
/// Inbound: binary, text and continuation frames are passed on as their payload, frame by frame, so a
/// fragmented message never has to be reassembled (and never buffered whole); ping is answered with
/// pong; a Close frame ends the peer's direction (inputClosed, like a TCP FIN) and the connection
/// closes once our Close has gone out too. Outbound: each ByteBuffer becomes one binary frame,
/// masked with a fresh key when this end is the client (RFC 6455 §5.3), unmasked from the server.
///
/// Frames are written as bytes (WebSocketFrameHead); a protocol error from NIO's frame decoder in
/// front (oversized frame, bad control frame) is answered with the matching Close code, then the
/// connection closes. Reads are not touched: `read()` passes through, so the protocol handler's
/// backpressure reaches the socket unchanged.
final class WebSocketStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role { case server, client }

    /// How long a close waits for our Close frame to be written before the socket closes anyway.
    static let closeGrace = TimeAmount.seconds(5)

    private let role: Role
    private var context: ChannelHandlerContext?
    private var receivedClose = false
    private var sentClose = false

    init(role: Role) {
        self.role = role
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Hands bytes that arrived outside any frame (early data from the upgrade request) to the
    /// protocol handler, as the first bytes of the stream.
    func deliver(_ bytes: [UInt8]) {
        guard let context else { return }
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes)))
        context.fireChannelReadComplete()
    }

    /// Writes bytes as frames from this handler's position (the client's writes held during the
    /// upgrade), as if the protocol handler had written them now.
    func writeStream(_ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(context: context, data: NIOAny(buffer), promise: promise)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .continuation:
            guard !receivedClose, frame.data.readableBytes > 0 else { return }
            context.fireChannelRead(wrapInboundOut(Self.unmasked(frame, allocator: context.channel.allocator)))
        case .ping:
            // A peer that pings without reading our pongs must not make us queue without bound.
            guard !sentClose, context.channel.isWritable else { return }
            send(.pong, Self.unmasked(frame, allocator: context.channel.allocator), context: context, promise: nil)
            context.flush()
        case .connectionClose:
            guard !receivedClose else { return }
            receivedClose = true
            if sentClose {
                context.close(promise: nil)
            } else {
                // The peer sends nothing more; our side may still be sending (RFC 6455 §5.5.1 allows
                // finishing). Our Close goes out when the protocol handler closes.
                context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
        default:
            break  // pong, reserved opcodes
        }
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        guard !sentClose else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        guard buffer.readableBytes > 0 else {
            // An empty write (used to wait for earlier writes) would be an empty frame on the wire.
            promise?.succeed(())
            return
        }
        send(.binary, buffer, context: context, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input, !sentClose else {
            context.close(mode: mode, promise: promise)
            return
        }
        sentClose = true
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        let written = context.eventLoop.makePromise(of: Void.self)
        send(.connectionClose, code, context: context, promise: written)
        context.flush()
        if mode == .output && !receivedClose {
            // Half-close: the peer answers with its Close, which then closes the connection.
            written.futureResult.cascade(to: promise)
            return
        }
        let grace = context.eventLoop.scheduleTask(in: Self.closeGrace) { context.close(mode: .all, promise: nil) }
        written.futureResult.whenComplete { _ in
            grace.cancel()
            context.close(mode: .all, promise: promise)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // NIO's frame decoder failed (RFC 6455 §7.4.1 codes: 1002 protocol error, 1009 too big).
        if let error = error as? NIOWebSocketError, !sentClose {
            sentClose = true
            var code = context.channel.allocator.buffer(capacity: 2)
            code.write(webSocketErrorCode: error == .invalidFrameLength ? .messageTooLarge : .protocolError)
            let written = context.eventLoop.makePromise(of: Void.self)
            send(.connectionClose, code, context: context, promise: written)
            context.flush()
            written.futureResult.whenComplete { _ in context.close(promise: nil) }
        }
        context.fireErrorCaught(error)
    }

    /// A server-side frame's payload without its client mask (one copy, word by word).
    static func unmasked(_ frame: WebSocketFrame, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard let key = frame.maskKey else { return frame.data }
        var out = allocator.buffer(capacity: frame.data.readableBytes)
        WebSocketFrameHead.appendMasked(frame.data, key: key, to: &out)
        return out
    }

    /// Server: header and payload as two writes (no copy; the socket gathers them). Client: one
    /// buffer with the header and the masked payload.
    private func send(_ opcode: WebSocketOpcode, _ data: ByteBuffer, context: ChannelHandlerContext,
                      promise: EventLoopPromise<Void>?) {
        switch role {
        case .server:
            var head = context.channel.allocator.buffer(capacity: 10)
            WebSocketFrameHead.write(opcode: opcode, length: data.readableBytes, maskKey: nil, into: &head)
            if data.readableBytes == 0 {
                context.write(wrapOutboundOut(head), promise: promise)
            } else {
                context.write(wrapOutboundOut(head), promise: nil)
                context.write(wrapOutboundOut(data), promise: promise)
            }
        case .client:
            let key = WebSocketMaskingKey.random()
            var out = context.channel.allocator.buffer(capacity: 14 + data.readableBytes)
            WebSocketFrameHead.write(opcode: opcode, length: data.readableBytes, maskKey: key, into: &out)
            WebSocketFrameHead.appendMasked(data, key: key, to: &out)
            context.write(wrapOutboundOut(out), promise: promise)
        }
    }
}
