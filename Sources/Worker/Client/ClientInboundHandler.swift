import Logging
import NIOCore
import Shared

/// One local client of a socks, http or dokodemo-door inbound: the protocol's handshake (a pure
/// state machine, `ClientHandshake`), then a relay through the default outbound with the same
/// discipline as the VMess server inbound: reads from the client are held while the outbound
/// cannot take more, reads from the target are held while the client cannot take more, half-close
/// in both directions, and V2Ray's policy timers.
///
///   local client ──▶ [ClientInboundHandler] ──▶ outbound link (vmess, freedom, …)
///                ◀──                         ◀── (DownstreamSink)
final class ClientInboundHandler<Handshake: ClientHandshake>: ChannelDuplexHandler, DownstreamSink, RelayTimerOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case handshake, associating, relaying, closed }

    /// A handshake that has not completed within this many bytes is not a proxy request.
    static var maxHandshakeBytes: Int { 64 * 1024 }

    private let inbound: ClientInboundContext
    private var handshake: Handshake
    /// dokodemo-door: relay to this at once, no handshake.
    private let fixedDestination: Destination?
    private var logger: Logger
    private var phase = Phase.handshake
    private var cumulation: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?
    private var timer: ConnectionTimer?
    /// Backpressure and half-close with the outbound link (shared with the VMess server inbound).
    private let glue = RelayGlue()
    private var link: UpstreamLink? { glue.link }
    private var failureReply: [UInt8]?
    private var association: SOCKSUDPAssociation?
    private var sentDownstream = false

    init(inbound: ClientInboundContext, handshake: Handshake, fixedDestination: Destination? = nil) {
        self.inbound = inbound
        self.handshake = handshake
        self.fixedDestination = fixedDestination
        self.logger = inbound.logger
    }

    // MARK: RelayTimerOwner

    func connectionWentQuiet() {
        StreamReceiveAllocator.releaseIdle(on: context?.eventLoop, link: link)
    }

    func connectionIdleTimedOut() {
        logger.debug("idle timeout")
        closeClient()
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        guard fixedDestination == nil else { return }
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(Int64(max(inbound.level.handshake, 1)))) { [weak self] in
            guard let self, case .handshake = self.phase else { return }
            self.logger.debug("\(self.handshake.name): handshake timeout")
            self.closeClient()
        }
        if context.channel.isActive { start(context: context) }
    }

    /// The context holds this handler (and the pipeline, the channel): drop it at removal, or the
    /// connection's whole object graph stays alive in a reference cycle.
    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private var started = false

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        inbound.counters.accepted += 1
        inbound.counters.active += 1
        if let fixedDestination {
            var none = context.channel.allocator.buffer(capacity: 0)
            startRelay(ClientRequest(destination: fixedDestination), remaining: &none, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if started { inbound.counters.active -= 1 }
        teardown()
        context.fireChannelInactive()
    }

    private func teardown() {
        phase = .closed
        handshakeTimeout?.cancel()
        timer?.cancel()
        glue.close()
        association?.close()
        association = nil
    }

    private func closeClient() {
        guard let context else { return }
        teardown()
        context.close(promise: nil)
    }

    /// Closes once what was written has gone out (a full close would drop pending writes).
    private func closeAfterFlush() {
        guard let context else { return }
        phase = .closed
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { [weak self] _ in
            self?.closeClient()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("client error: \(error)")
        closeClient()
    }

    // MARK: reads from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch phase {
        case .handshake:
            if var c = cumulation {
                cumulation = nil
                c.writeBuffer(&buffer)
                buffer = c
            }
            feedHandshake(&buffer, context: context)
        case .relaying:
            switch glue.admit(buffer) {
            case .pass: upstream(buffer)
            case .kept: break
            case .refused: closeClient()
            }
        case .associating, .closed:
            break  // the control connection of a UDP association carries nothing (RFC 1928 §7)
        }
    }

    private func feedHandshake(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while true {
            switch handshake.step(&buffer) {
            case .needMore:
                guard buffer.readableBytes <= Self.maxHandshakeBytes else { return closeClient() }
                if buffer.readableBytes > 0 { cumulation = buffer }
                return
            case .reply(let bytes):
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                if buffer.readableBytes == 0 { return }
            case .refuse(let bytes):
                inbound.counters.rejected["\(handshake.name)_refused", default: 0] += 1
                logger.debug("\(handshake.name): request refused", metadata: ["peer": "\(context.channel.clientAddress?.description ?? "?")"])
                if bytes.isEmpty { return closeClient() }
                context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                return closeAfterFlush()
            case .connect(let request):
                return startRelay(request, remaining: &buffer, context: context)
            case .associateUDP(let client):
                return startAssociation(client: client, context: context)
            }
        }
    }

    private func startRelay(_ request: ClientRequest, remaining: inout ByteBuffer, context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        phase = .relaying
        failureReply = request.failureReply
        let level = inbound.level
        timer = .relaying(self, loop: context.eventLoop, connIdle: level.connIdle)
        let destination = request.destination
        logger.debug("\(handshake.name): relay", metadata: ["dest": "\(destination)"])
        inbound.accessLog?.accepted(from: context.channel.clientAddress.map(VMessServerHandler.peerText) ?? "?",
                                    network: destination.network.rawValue,
                                    destination: "\(destination.address):\(destination.port)", email: nil)
        if !request.reply.isEmpty {
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: request.reply)), promise: nil)
        }
        let origin = RequestOrigin(inboundTag: inbound.config.tag, source: context.channel.clientAddress, sniffing: inbound.sniffing)
        let link = inbound.outbounds.open(destination, origin: origin, sink: self, loop: context.eventLoop, level: level)
        guard case .relaying = phase else { return link.close() }  // failed on the spot
        glue.link = link
        if let payload = request.payload { upstream(payload) }
        if remaining.readableBytes > 0 {
            upstream(remaining)
            remaining.moveReaderIndex(to: remaining.writerIndex)
        }
        link.flush()
        context.flush()
    }

    private func startAssociation(client: Destination, context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        phase = .associating
        guard case .socks(let settings) = inbound.config.settings else { return closeClient() }
        let association = SOCKSUDPAssociation(inbound: inbound, control: context.channel, clientHint: client,
                                              announce: settings.udpAddress)
        self.association = association
        association.bind().whenComplete { [weak self] result in
            guard let self, let context = self.context, case .associating = self.phase else {
                association.close()
                return
            }
            switch result {
            case .success(let bound):
                context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(bytes:
                    SOCKSMessage.reply(.succeeded, address: bound.address, port: bound.port))), promise: nil)
            case .failure(let error):
                self.logger.debug("socks: UDP associate failed: \(error)")
                context.write(self.wrapOutboundOut(context.channel.allocator.buffer(bytes: SOCKSMessage.reply(.generalFailure))),
                              promise: nil)
                self.closeAfterFlush()
            }
        }
    }

    private func upstream(_ buffer: ByteBuffer) {
        guard let link else { return }
        timer?.touch()
        inbound.counters.bytesUp += buffer.readableBytes
        inbound.meter.countUp(buffer.readableBytes)
        link.write(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link?.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            switch phase {
            case .relaying: if glue.admitEnd() { uplinkFinished() }
            default: closeClient()  // EOF during the handshake, or the end of a UDP association
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func uplinkFinished() {
        switch glue.finishUplink() {
        case .already: return
        case .both: closeAfterFlush()
        case .other: timer?.reset(to: .seconds(Int64(inbound.level.downlinkOnly)))
        }
    }

    // MARK: backpressure

    func read(context: ChannelHandlerContext) { glue.read(context: context) }

    func upstreamWritabilityChanged() {
        glue.upstreamWritabilityChanged(context: context, deliver: { upstream($0) }, end: { uplinkFinished() })
    }

    var downstreamWritable: Bool { context?.channel.isWritable ?? false }

    func channelWritabilityChanged(context: ChannelHandlerContext) { glue.channelWritabilityChanged(context: context) }

    // MARK: downstream (target → client)

    func downstream(_ payload: inout ByteBuffer) {
        guard case .relaying = phase, let context else { return }
        timer?.touch()
        inbound.counters.bytesDown += payload.readableBytes
        inbound.meter.countDown(payload.readableBytes)
        sentDownstream = true
        context.write(wrapOutboundOut(payload), promise: nil)
    }

    /// A stream inbound gets no datagrams.
    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}

    func flushDownstream() { context?.flush() }

    /// The target has nothing more: half-close towards the client, or answer a failure the protocol
    /// can express (HTTP 502 when the target never answered).
    func downstreamFinished(error: Bool) {
        guard case .relaying = phase, let context else { return }
        let finish = glue.finishDownlink()
        guard finish != .already else { return }
        if error, !sentDownstream, let reply = failureReply {
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
            return closeAfterFlush()
        }
        if error || finish == .both { return closeAfterFlush() }
        context.flush()
        context.close(mode: .output, promise: nil)
        timer?.reset(to: .seconds(Int64(inbound.level.uplinkOnly)))
    }
}
