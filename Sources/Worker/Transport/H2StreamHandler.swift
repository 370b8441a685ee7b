import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import Shared

/// One HTTP/2 stream of the gRPC ("gun") or h2 transport, turned into the plain byte stream the
/// protocol handlers expect (`ByteBuffer` in and out), on either side.
///
///   server:  HEADERS (request) → H2RequestCheck → response HEADERS, then the protocol handler is
///            installed behind this one; refused requests get 404 / grpc-status 12 and no VMess.
///   client:  request HEADERS at channelActive; the response must be `:status 200`.
///   both:    DATA → gun messages decoded (GunHunkDecoder) or the raw body → channelRead;
///            END_STREAM from the peer → ChannelEvent.inputClosed; close(mode: .output) → our
///            END_STREAM (server gun: trailers with grpc-status 0, otherwise an empty DATA frame).
///
/// A stream channel's own close sends RST_STREAM at once, possibly ahead of DATA still waiting for
/// flow-control window; so a full close from the protocol handler first ends the stream and closes
/// only once that END_STREAM has been handed to the connection (or after `endGrace`).
///
/// Backpressure is HTTP/2's: the stream channel delivers frames only on read(), which the protocol
/// handler's glue withholds while the other side is not writable, and NIO only re-opens the peer's
/// window for delivered bytes; so a stream never has more than its window in flight to us.
final class H2StreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    enum Role {
        case server(check: H2RequestCheck, installProtocol: (Channel) throws -> Void)
        /// `response` completes at the server's response head (fails on anything but 200).
        case client(request: HPACKHeaders, gun: Bool, response: EventLoopPromise<Void>)
    }

    /// How long a request head may take (the ws/httpupgrade transports' 4 s).
    static let headTimeout = TimeAmount.seconds(4)
    /// How long a closing stream waits for its END_STREAM to leave before resetting.
    static let endGrace = TimeAmount.seconds(5)

    private enum Phase { case awaitingHead, open, refused, closed }

    private let role: Role
    private let logger: Logger
    private var phase = Phase.awaitingHead
    /// nil: the raw h2 body.
    private var gun: GunHunkDecoder?
    private var sentEnd = false
    private var receivedEnd = false
    private var timer: Scheduled<Void>?

    init(role: Role, logger: Logger) {
        self.role = role
        self.logger = logger
        if case .client(_, let gun, _) = role, gun { self.gun = GunHunkDecoder() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard case .server = role else { return }
        timer = context.eventLoop.scheduleTask(in: Self.headTimeout) { [weak self] in
            guard let self, self.phase == .awaitingHead else { return }
            self.logger.debug("h2 request head timeout")
            self.phase = .closed
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        switch role {
        case .server:
            // The protocol handler is installed (and told the stream is active) once the request is accepted.
            break
        case .client(let request, _, _):
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: request))), promise: nil)
            phase = .open
            context.fireChannelActive()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if case .client(_, _, let response) = role, !receivedHead {
            receivedHead = true
            response.fail(ChannelError.ioOnClosedChannel)
        }
        let wasOpen = phase == .open
        phase = .closed
        // A refused stream never had a protocol handler that would want to hear of it.
        if wasOpen || { if case .client = role { return true } else { return false } }() {
            context.fireChannelInactive()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if case .awaitingHead = phase, case .server(let check, let install) = role {
                serve(headers.headers, endStream: headers.endStream, check: check, install: install, context: context)
            } else if case .client(_, _, let response) = role, !receivedHead {
                receivedHead = true
                let status = headers.headers.first(name: ":status")
                guard status == "200", !headers.endStream else {
                    logger.debug("h2 transport: server answered \(status ?? "?")")
                    response.fail(H2TransportError.refused(status: status ?? "?"))
                    return fail(context: context)
                }
                response.succeed(())
            } else if phase == .open {
                // Trailers (gun: grpc-status); only their END_STREAM matters.
                if headers.endStream { endOfInput(context: context) }
            }
        case .data(let payload):
            guard phase == .open, !receivedEnd else { return }
            if case .byteBuffer(let buffer) = payload.data, buffer.readableBytes > 0 {
                if gun != nil {
                    deliverGun(buffer, context: context)
                } else {
                    context.fireChannelRead(wrapInboundOut(buffer))
                }
            }
            if payload.endStream, phase == .open { endOfInput(context: context) }
        default:
            break
        }
    }

    /// Client: the response head arrived (or the stream ended before it).
    private var receivedHead = false

    func channelReadComplete(context: ChannelHandlerContext) {
        if phase == .open { context.fireChannelReadComplete() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("h2 stream error: \(error)")
        if phase == .open { context.fireErrorCaught(error) } else { fail(context: context) }
    }

    // MARK: server

    private func serve(_ head: HPACKHeaders, endStream: Bool, check: H2RequestCheck,
                       install: (Channel) throws -> Void, context: ChannelHandlerContext) {
        timer?.cancel()
        let method = head.first(name: ":method") ?? ""
        let path = head.first(name: ":path") ?? ""
        let decision = check.decide(method: method, path: path,
                                    authority: head.first(name: ":authority") ?? head.first(name: "host"),
                                    contentType: head.first(name: "content-type"))
        let response: HPACKHeaders
        switch decision {
        case .notFound:
            return refuse([(":status", "404")], reason: "\(method) \(path.prefix(64))", context: context)
        case .grpcUnimplemented:
            return refuse([(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12"),
                           ("grpc-message", "unknown service")], reason: "\(method) \(path.prefix(64))", context: context)
        case .openGun:
            gun = GunHunkDecoder()
            response = [":status": "200", "content-type": "application/grpc"]
        case .openRaw:
            // V2Ray's h2 hub answers this way before the first byte of the stream.
            response = [":status": "200", "cache-control": "no-store"]
        }
        phase = .open
        logger.debug("h2 transport stream", metadata: ["method": "\(method)", "path": "\(path.prefix(64))"])
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: response))), promise: nil)
        do {
            try install(context.channel)
        } catch {
            logger.debug("h2 transport: protocol handler: \(error)")
            return fail(context: context)
        }
        context.fireChannelActive()
        if endStream { endOfInput(context: context) }
    }

    private func refuse(_ fields: [(String, String)], reason: String, context: ChannelHandlerContext) {
        phase = .refused
        logger.debug("refused h2 transport request", metadata: ["status": "\(fields[0].1)", "request": "\(reason)"])
        let headers = HPACKHeaders(fields)
        sentEnd = true
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true)))).whenComplete { _ in
            // The client may still be sending its body: a reset tells it to stop.
            context.close(promise: nil)
        }
    }

    // MARK: inbound bytes

    private func deliverGun(_ incoming: ByteBuffer, context: ChannelHandlerContext) {
        do {
            try gun!.feed(incoming) { slice in
                context.fireChannelRead(wrapInboundOut(slice))
                return phase == .open  // the protocol handler may have closed the stream
            }
        } catch {
            logger.debug("gun stream: \(error)")
            fail(context: context)
        }
    }

    private func endOfInput(context: ChannelHandlerContext) {
        guard !receivedEnd else { return }
        receivedEnd = true
        if let gun, !gun.isAtMessageBoundary {
            logger.debug("gun stream ended inside a message")
            return fail(context: context)
        }
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    /// A broken stream: reset it (RST_STREAM) without an orderly end.
    private func fail(context: ChannelHandlerContext) {
        guard phase != .closed else { return }
        phase = .closed
        context.close(promise: nil)
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = unwrapOutboundIn(data)
        guard phase == .open, !sentEnd else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        guard payload.readableBytes > 0 else {
            // Nothing to carry (the VMess handler flushes with an empty write before closing): an
            // empty DATA frame would only count against the peer's empty-frame heuristics.
            promise?.succeed(())
            return
        }
        if gun != nil {
            var prefix = context.channel.allocator.buffer(capacity: GunHunkEncoder.maximumPrefixSize)
            GunHunkEncoder.writePrefix(length: payload.readableBytes, into: &prefix)
            // gRPC message prefix and payload in separate DATA frames: no copy of the payload.
            context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(prefix)))), promise: nil)
        }
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(payload)))), promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .output:
            guard phase == .open, !sentEnd else {
                promise?.succeed(())
                return
            }
            sendEnd(context: context, promise: promise)
        case .all:
            guard phase == .open, !sentEnd else {
                phase = .closed
                return context.close(mode: .all, promise: promise)
            }
            let ended = context.eventLoop.makePromise(of: Void.self)
            sendEnd(context: context, promise: ended)
            let grace = context.eventLoop.scheduleTask(in: Self.endGrace) { ended.fail(H2TransportError.endTimeout) }
            ended.futureResult.whenComplete { [weak self] _ in
                grace.cancel()
                self?.phase = .closed
                // Both ends sent: the stream is already closing cleanly; otherwise this resets it.
                context.close(mode: .all, promise: promise)
            }
        case .input:
            promise?.fail(ChannelError.operationUnsupported)
        }
    }

    private func sendEnd(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        sentEnd = true
        let frame: HTTP2Frame.FramePayload
        if case .server = role, gun != nil {
            frame = .headers(.init(headers: ["grpc-status": "0"], endStream: true))
        } else {
            frame = .data(.init(data: .byteBuffer(context.channel.allocator.buffer(capacity: 0)), endStream: true))
        }
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
    }
}

enum H2TransportError: Error, CustomStringConvertible {
    case refused(status: String)
    /// Our END_STREAM did not leave within H2StreamHandler.endGrace (the peer gave no window).
    case endTimeout
    var description: String {
        switch self {
        case .refused(let status): "the server refused the HTTP/2 transport request (status \(status))"
        case .endTimeout: "the end of the HTTP/2 stream could not be sent in time"
        }
    }
}
