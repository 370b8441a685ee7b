import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared

/// One VMess client connection: handshake (pure state machine in Shared), anti-probing drain, then
/// the relay to the outbound with backpressure in both directions and V2Ray's policy timeouts.
///
///   client ──VMess──▶ [VMessServerHandler] ──plain──▶ target (TargetRelayHandler / UDPRelay)
///          ◀─VMess───                       ◀─plain───
final class VMessServerHandler: ChannelDuplexHandler, DownstreamSink, RelayTimerOwner {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case handshake, draining(total: Int), relaying, closed }

    private let inbound: InboundContext
    private var logger: Logger
    private var phase = Phase.handshake
    private var handshake: ServerHandshake
    private var cumulation: ByteBuffer?
    private var bytesReceived = 0
    private var context: ChannelHandlerContext?
    private var handshakeTimeout: Scheduled<Void>?
    private var timer: ConnectionTimer?
    private var level = LevelPolicy()
    private var userKey = ""
    /// The user's API counters (`user>>>EMAIL>>>traffic>>>…`), resolved at the handshake.
    private var userMeter = TrafficMeter.none
    /// Registered with the inbound while relaying (a runtime removal of the user ends it).
    private var trackedUser: UserID?
    /// The user's place under its limits (nil: no limit applies).
    private var limitTicket: UserLimitTicket?
    /// Reads held back by the user's rate (uplink: from the client; downlink: from the target).
    private var uplinkRateHold: Scheduled<Void>?
    private var downlinkRateHold: Scheduled<Void>?
    /// The user's connection counters (metrics), opened at the handshake and closed at teardown.
    private var userConnections: ConnectionMeter?

    private var decoder: BodyDecoder?
    private var encoder: BodyEncoder?
    /// The response header goes out lazily with the first downstream bytes (§4).
    private var responseHeader: ByteBuffer?

    /// Backpressure and half-close with the outbound link (shared with the client inbounds).
    private let glue = RelayGlue()
    private var link: UpstreamLink? { glue.link }
    private var destination: Destination?
    private var sentDownstream = false

    init(inbound: InboundContext) {
        self.inbound = inbound
        self.logger = inbound.logger
        self.handshake = ServerHandshake(users: inbound.users, replay: inbound.replay, sessions: inbound.sessions,
                                         disableInsecure: inbound.disableInsecure)
    }

    // MARK: RelayTimerOwner

    func connectionWentQuiet() {
        decoder?.releaseCipherContexts()
        encoder?.releaseCipherContexts()
        StreamReceiveAllocator.releaseIdle(on: context?.eventLoop, link: link)
    }

    func connectionIdleTimedOut() {
        logger.debug("idle timeout")
        closeClient()
    }

    static func peerText(_ a: NIOCore.SocketAddress) -> String {
        "\(a.ipAddress ?? "?"):\(a.port ?? 0)"
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let seconds = inbound.policy.level(0).handshake
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(Int64(max(seconds, 1)))) { [weak self] in
            guard let self, let context = self.context else { return }
            switch self.phase {
            case .handshake, .draining:
                self.logger.debug("handshake timeout")
                context.close(promise: nil)
            default: break
            }
        }
    }

    /// The context holds this handler (and the pipeline, the channel); holding the context past
    /// removal would keep the whole connection alive forever (measured: 6 kB per closed connection).
    func handlerRemoved(context: ChannelHandlerContext) {
        teardown()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        inbound.counters.accepted += 1
        inbound.counters.active += 1
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbound.counters.active -= 1
        teardown()
        context.fireChannelInactive()
    }

    private func teardown() {
        limitTicket?.release()
        limitTicket = nil
        uplinkRateHold?.cancel()
        downlinkRateHold?.cancel()
        if let id = trackedUser {
            trackedUser = nil
            inbound.untrack(id, connection: ObjectIdentifier(self))
        }
        if let meter = userConnections {
            userConnections = nil
            meter.close()
        }
        phase = .closed
        handshakeTimeout?.cancel()
        timer?.cancel()
        glue.close()
    }

    private func closeClient() {
        guard let context else { return }
        teardown()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("client error: \(error)")
        closeClient()
    }

    // MARK: reads from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        bytesReceived += buffer.readableBytes
        // The inbound's counters see the connection's bytes, VMess framing included (as the
        // reference's do); the user's see the payload.
        inbound.meter.countUp(buffer.readableBytes)
        switch phase {
        case .handshake:
            if bytesReceived == buffer.readableBytes { keyHandshakeBySource(context) }
            if var c = cumulation {
                cumulation = nil
                c.writeBuffer(&buffer)
                buffer = c
            }
            feedHandshake(&buffer, context: context)
        case .draining(let total):
            if bytesReceived >= total { closeClient() }
        case .relaying:
            switch glue.admit(buffer) {
            case .pass: upstream(&buffer)
            case .kept: break
            case .refused: closeClient()
            }
        case .closed:
            break
        }
    }

    /// With the first bytes the client's address is known (behind a PROXY-protocol balancer, only then):
    /// the user it authenticated as last is tried first.
    private func keyHandshakeBySource(_ context: ChannelHandlerContext) {
        guard let address = context.channel.clientAddress.flatMap(OutboundSelector.rawAddress) else { return }
        handshake = ServerHandshake(users: inbound.users, replay: inbound.replay, sessions: inbound.sessions,
                                    disableInsecure: inbound.disableInsecure, source: SourceKey(address: address))
    }

    private func feedHandshake(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        switch handshake.feed(&buffer, now: Int64(Date().timeIntervalSince1970)) {
        case .needMore:
            if buffer.readableBytes > 0 { cumulation = buffer }
        case .rejected(let failure, let action):
            if case .clockSkew(let seconds) = failure {
                inbound.counters.skew[SkewHistogram.Outcome.rejected.rawValue].record(seconds)
            }
            logger.debug("rejected handshake", metadata: ["reason": "\(failure)", "peer": "\(context.channel.clientAddress?.description ?? "?")"])
            reject(counted: failure.counterName, reason: failure.description, action, context: context)
        case .accepted(let accepted):
            accept(accepted, remaining: &buffer, context: context)
        }
    }

    private func accept(_ a: ServerHandshake.Accepted, remaining: inout ByteBuffer, context: ChannelHandlerContext) {
        userKey = a.user.key
        if let limiter = inbound.userLimiter {
            let source = context.channel.clientAddress.flatMap(OutboundSelector.rawAddress).flatMap { SourceKey(address: $0) }
            switch limiter.admit(key: userKey, email: a.user.email, level: a.user.level, source: source) {
            case .unlimited: break
            case .admitted(let ticket): limitTicket = ticket
            case .refused(let why):
                return refuseOverLimit(why, context: context)
            }
        }
        handshakeTimeout?.cancel()
        let h = a.header
        level = inbound.policy.level(a.user.level)
        userMeter = inbound.counters.stats.userMeter(inbound.statSwitches, email: a.user.email, level: a.user.level)
        guard inbound.track(a.user.id, connection: ObjectIdentifier(self), close: { [weak self] in
            self?.logger.debug("user removed; connection ended")
            self?.closeClient()
        }) else {
            logger.debug("user removed during the handshake")
            return closeClient()
        }
        trackedUser = a.user.id
        if let skew = a.skew { inbound.counters.skew[SkewHistogram.Outcome.accepted.rawValue].record(skew) }
        let connections = inbound.counters.stats.userConnectionMeter(userKey)
        connections.open()
        userConnections = connections
        // Only debug messages use it: setting metadata copies the logger's whole metadata
        // dictionary (584 B per connection, kept for its life), which at the usual warning level
        // would be memory for nothing. The few error messages name the user themselves.
        if logger.logLevel <= .debug { logger[metadataKey: "user"] = "\(userKey)" }

        let keys = ResponseHeader.bodyKeys(request: h, legacy: a.legacy)
        let plainHeader = ResponseHeader.plain(responseAuth: h.responseAuth, command: inbound.detour.flatMap { detour in
            // A port of the detour inbound at random, valid until its ports change: 255 minutes (the
            // most the command holds) when they never do, else the whole minutes to the next random
            // choice; with less than a minute left no command, so the client stays where it is.
            let minutes = detour.validUntil.map { ($0 - Int64(Date().timeIntervalSince1970)) / 60 } ?? 255
            guard minutes >= 1, let port = detour.ports.randomElement() else { return nil }
            return SwitchAccountCommand(port: UInt16(port), id: a.user.id.detour(tag: detour.tag),
                                        alterIds: UInt16(clamping: detour.alterId), level: UInt8(clamping: detour.level),
                                        validMinutes: UInt8(clamping: minutes))
        })
        var headerBytes: [UInt8]
        var responseCFB: AESCFBStream? = nil
        do {
            if a.legacy {
                let cfb = try AESCFBStream(key: keys.key, iv: keys.iv, encrypting: true)
                headerBytes = cfb.apply(plainHeader)
                responseCFB = cfb
            } else {
                headerBytes = try ResponseHeader.sealAEAD(plainHeader, keys: keys)
            }
        } catch {
            logger.error("response header: \(error)", metadata: ["user": "\(userKey)"])
            return closeClient()
        }
        let header = context.channel.allocator.buffer(bytes: headerBytes)

        do {
            let req = try BodyParameters.request(h)
            let resp = try BodyParameters.response(h, keys: keys)
            decoder = try BodyDecoder(req)
            encoder = try BodyEncoder(resp, continuing: resp.cipher == .legacy && a.legacy ? responseCFB : nil)
        } catch {
            // Like the reference: the header goes out, then the connection closes (§6.3 Sec 6, §11.2 last row).
            logger.debug("body setup failed: \(error)")
            inbound.counters.rejected["body_setup", default: 0] += 1
            let sent = context.eventLoop.makePromise(of: Void.self)
            send(header, context: context, promise: sent)
            context.flush()
            sent.futureResult.whenComplete { [weak self] _ in self?.closeClient() }
            phase = .closed
            return
        }
        responseHeader = header
        phase = .relaying
        timer = .relaying(self, loop: context.eventLoop, connIdle: level.connIdle)
        let destination = h.address ?? .domain("")
        logger.debug("accepted", metadata: ["cmd": "\(h.command)", "dest": "\(destination):\(h.port)"])
        inbound.accessLog?.accepted(from: context.channel.clientAddress.map(Self.peerText) ?? "?",
                                    network: h.command == RequestCommand.udp.rawValue ? "udp" : "tcp",
                                    destination: "\(destination):\(h.port)", email: a.user.email)

        let origin = RequestOrigin(inboundTag: inbound.config.tag, user: a.user.email, source: context.channel.clientAddress,
                                   sniffing: inbound.sniffing)
        let network: Destination.Network
        switch h.requestCommand {
        case .tcp where destination == .domain("v1.mux.cool"), .mux:
            // Any request to v1.mux.cool is Mux.Cool, whatever its command (§10.1).
            self.destination = Destination(network: .tcp, address: destination, port: h.port)
            glue.link = MuxServer(sink: self, outbounds: inbound.outbounds, origin: origin, loop: context.eventLoop, level: level,
                             counters: inbound.counters, udpToClient: inbound.udpToClient, logger: logger)
            if remaining.readableBytes > 0 { upstream(&remaining) }
            return
        case .tcp: network = .tcp
        case .udp: network = .udp
        default: return closeClient()
        }
        let dest = Destination(network: network, address: destination, port: h.port)
        self.destination = dest
        glue.link = inbound.outbounds.open(dest, origin: origin, sink: self, loop: context.eventLoop, level: level)
        if remaining.readableBytes > 0 { upstream(&remaining) }
    }

    /// Over a user limit: treated like an unknown id (drain, then close, as the handshake's own
    /// rejections do), so a prober learns nothing about which ids exist or how they are limited.
    private func refuseOverLimit(_ why: UserLimitTable.Refusal, context: ChannelHandlerContext) {
        logger.debug("over a user limit", metadata: ["reason": "\(why.rawValue)", "user": "\(userKey)",
                                                     "peer": "\(context.channel.clientAddress?.description ?? "?")"])
        reject(counted: why.rawValue, reason: why.rawValue, .drain(total: inbound.users.drainSize()), context: context)
    }

    /// Every refused handshake: counted by `counted`, access-logged, then closed or drained as `action` says.
    private func reject(counted: String, reason: String, _ action: HandshakeAction, context: ChannelHandlerContext) {
        inbound.counters.rejected[counted, default: 0] += 1
        inbound.accessLog?.rejected(from: context.channel.clientAddress.map(Self.peerText) ?? "?", reason: reason)
        switch action {
        case .close:
            closeClient()
        case .drain(let total):
            if bytesReceived >= total { closeClient() } else { phase = .draining(total: total) }
        }
    }

    /// The user's uplink rate: after `bytes` from the client, hold its reads as long as the limit says.
    /// Counted even while held: what one read brings past the hold still pays.
    private func meterUplink(_ bytes: Int) {
        guard let wait = limitTicket?.afterUplink(bytes), wait > 0, uplinkRateHold == nil else { return }
        uplinkRateHold = rateHold(wait) { handler in
            handler.uplinkRateHold = nil
            handler.glue.holdForRate = false
            handler.upstreamWritabilityChanged()
        }
        glue.holdForRate = uplinkRateHold != nil
    }

    /// The user's downlink rate: after `bytes` toward the client, the target is not read for a while
    /// (downstreamWritable says no; datagrams meanwhile are dropped, as for a slow client).
    private func meterDownlink(_ bytes: Int) {
        guard let wait = limitTicket?.afterDownlink(bytes), wait > 0, downlinkRateHold == nil else { return }
        downlinkRateHold = rateHold(wait) { handler in
            handler.downlinkRateHold = nil
            if handler.downstreamWritable { handler.link?.downstreamWritabilityChanged() }
        }
    }

    /// `resume` after `wait` ns (at most a minute), unless the connection is gone by then.
    private func rateHold(_ wait: UInt64, resume: @escaping (VMessServerHandler) -> Void) -> Scheduled<Void>? {
        context?.eventLoop.scheduleTask(in: .nanoseconds(Int64(min(wait, 60_000_000_000)))) { [weak self] in
            if let self { resume(self) }
        }
    }

    /// Decodes body bytes from the client and hands the plaintext to the outbound.
    private func upstream(_ buffer: inout ByteBuffer) {
        guard let decoder else { return }
        timer?.touch()
        var moved = 0
        defer { if moved > 0 { meterUplink(moved) } }
        do {
            let ended = try decoder.decode(&buffer) { payload in
                moved &+= payload.readableBytes
                inbound.counters.bytesUp += payload.readableBytes
                inbound.counters.perUserUp[userKey, default: 0] += payload.readableBytes
                userMeter.countUp(payload.readableBytes)
                guard let link, let destination else { return }
                if destination.network == .udp {
                    link.writeDatagram(payload, to: destination)
                } else {
                    link.write(payload)
                }
            }
            if ended { uplinkFinished() }
        } catch {
            logger.debug("request body: \(error)")
            inbound.counters.rejected["body_error", default: 0] += 1
            closeClient()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        link?.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            switch phase {
            case .relaying: if glue.admitEnd() { uplinkFinished() }
            default: closeClient()  // EOF during handshake or drain: close without answering
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func uplinkFinished() {
        switch glue.finishUplink() {
        case .already: return
        case .both: closeClient()
        case .other: timer?.reset(to: .seconds(Int64(level.downlinkOnly)))
        }
    }

    // MARK: backpressure

    func read(context: ChannelHandlerContext) { glue.read(context: context) }

    func upstreamWritabilityChanged() {
        glue.upstreamWritabilityChanged(context: context, deliver: { upstream(&$0) }, end: { uplinkFinished() })
    }

    var downstreamWritable: Bool { downlinkRateHold == nil && (context?.channel.isWritable ?? false) }

    func channelWritabilityChanged(context: ChannelHandlerContext) { glue.channelWritabilityChanged(context: context) }

    // MARK: downstream (target → client)

    func downstream(_ payload: inout ByteBuffer) {
        guard case .relaying = phase, let context, let encoder else { return }
        timer?.touch()
        inbound.counters.bytesDown += payload.readableBytes
        inbound.counters.perUserDown[userKey, default: 0] += payload.readableBytes
        userMeter.countDown(payload.readableBytes)
        meterDownlink(payload.readableBytes)
        writeResponseHeaderIfNeeded(context)
        do {
            let out = try encoder.encode(&payload, allocator: context.channel.allocator)
            send(out, context: context)
            sentDownstream = true
        } catch {
            logger.error("response body: \(error)", metadata: ["user": "\(userKey)"])
            closeClient()
        }
    }

    /// Every byte toward the client leaves through here: the inbound's counters see the
    /// connection's bytes, VMess framing included (as the reference's do).
    private func send(_ bytes: ByteBuffer, context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        inbound.meter.countDown(bytes.readableBytes)
        context.write(wrapOutboundOut(bytes), promise: promise)
    }

    func downstreamDatagram(_ datagram: ByteBuffer, source: Destination) {
        guard case .relaying = phase, let context, let encoder else { return }
        // UDP: drop rather than queue when the client is slow.
        guard context.channel.isWritable else { return inbound.counters.drop(.udpSlowClient) }
        // Over the user's downlink rate: datagrams are policed, not queued.
        guard downlinkRateHold == nil else { return inbound.counters.drop(.udpOverRate) }
        // Larger than the client can take whole (ClientLimits): dropped whole, never cut.
        guard datagram.readableBytes <= inbound.udpToClient else { return inbound.counters.drop(.udpTooLarge) }
        timer?.touch()
        inbound.counters.bytesDown += datagram.readableBytes
        inbound.counters.perUserDown[userKey, default: 0] += datagram.readableBytes
        userMeter.countDown(datagram.readableBytes)
        meterDownlink(datagram.readableBytes)
        writeResponseHeaderIfNeeded(context)
        var out = context.channel.allocator.buffer(capacity: datagram.readableBytes + 100)
        do {
            let fits = try datagram.withUnsafeReadableBytes { try encoder.encodeDatagram($0, into: &out) }
            // Too large for one chunk: dropped whole and counted, never cut.
            if fits {
                send(out, context: context)
            } else {
                inbound.counters.drop(.udpTooLarge)
            }
        } catch {
            logger.error("response body: \(error)", metadata: ["user": "\(userKey)"])
            closeClient()
        }
    }

    private func writeResponseHeaderIfNeeded(_ context: ChannelHandlerContext) {
        if let h = responseHeader {
            responseHeader = nil
            send(h, context: context)
        }
    }

    func flushDownstream() { context?.flush() }

    /// The target has nothing more to send: end the response body.
    func downstreamFinished(error: Bool) {
        guard case .relaying = phase, !glue.downlinkDone, let context, let encoder else { return }
        let finish = glue.finishDownlink()
        if let h = responseHeader {
            // Nothing was ever sent: the header goes out alone, without an end marker (§4).
            responseHeader = nil
            send(h, context: context)
        } else if sentDownstream {
            var end = context.channel.allocator.buffer(capacity: 100)
            try? encoder.encodeEnd(into: &end)
            if end.readableBytes > 0 {
                send(end, context: context)
            }
        }
        context.flush()
        if finish == .both || error {
            closeAfterFlush()
        } else {
            timer?.reset(to: .seconds(Int64(level.uplinkOnly)))
        }
    }

    private func closeAfterFlush() {
        guard let context else { return }
        phase = .closed
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { [weak self] _ in
            self?.closeClient()
        }
    }
}
