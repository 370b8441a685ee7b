import Logging
import NIOCore
import NIOPosix
import Shared

/// The freedom outbound: direct connections (TCP) and one datagram socket per session (UDP).
final class FreedomOutbound: Outbound {
    let tag: String?
    let dialer: FreedomDialer
    let logger: Logger

    init(tag: String?, settings: FreedomSettings, logger: Logger) {
        self.tag = tag
        self.dialer = FreedomDialer(settings: settings)
        self.logger = logger
    }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        switch destination.network {
        case .tcp:
            return TCPLink(dialer: dialer, destination: destination, sink: sink, loop: loop, level: level, logger: logger)
        case .udp:
            return UDPLink(dialer: dialer, destination: destination, sink: sink, loop: loop, logger: logger)
        }
    }
}

/// A TCP connection to the target. Writes made while connecting are queued up to the level's
/// bufferSize; past that `isWritable` turns false so the inbound stops reading its client.
final class TCPLink: UpstreamLink {
    private weak var sink: DownstreamSink?
    private var channel: Channel?
    private var relay: TargetRelayHandler?
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private let pendingLimit: Int
    private var finishPending = false
    private var closed = false

    init(dialer: FreedomDialer, destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy,
         logger: Logger) {
        self.sink = sink
        pendingLimit = max(level.bufferSize, 16) * 1024
        let watermark = min(max(level.bufferSize, 16), 1024) * 1024
        let relay = TargetRelayHandler(sink: sink)
        self.relay = relay
        dialer.connectTCP(on: loop, to: destination.address, port: destination.port,
                          timeout: .seconds(Int64(max(level.handshake, 4)))) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(relay)
                _ = channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: watermark / 2, high: watermark))
            }
        }.whenComplete { [weak self] result in
            switch result {
            case .success(let channel):
                guard let self, !self.closed else { channel.close(promise: nil); return }
                self.channel = channel
                for p in self.pending { channel.write(p, promise: nil) }
                self.pending.removeAll()
                self.pendingBytes = 0
                channel.flush()
                if self.finishPending { channel.close(mode: .output, promise: nil) }
                self.sink?.upstreamWritabilityChanged()
            case .failure(let error):
                logger.debug("connect to \(destination) failed: \(error)")
                self?.closed = true
                sink.downstreamFinished(error: true)
            }
        }
    }

    func write(_ buffer: ByteBuffer) {
        guard !closed else { return }
        if let channel {
            channel.write(buffer, promise: nil)
        } else {
            pending.append(buffer)
            pendingBytes += buffer.readableBytes
        }
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }

    func flush() { channel?.flush() }

    func finishUpstream() {
        if let channel {
            channel.close(mode: .output, promise: nil)
        } else {
            finishPending = true
        }
    }

    func close() {
        closed = true
        channel?.close(promise: nil)
        channel = nil
        pending.removeAll()
        relay?.sink = nil
    }

    var isWritable: Bool {
        if let channel { return channel.isWritable }
        return pendingBytes < pendingLimit
    }

    func downstreamWritabilityChanged() { relay?.resumeReads() }
}

/// UDP through one unconnected datagram socket per session: each datagram goes to its own
/// destination (fixed for VMess command 2, per packet for XUDP/SOCKS), every reply comes back with
/// its source. Datagrams are dropped, never queued without bound.
final class UDPLink: UpstreamLink, ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private weak var sink: DownstreamSink?
    private let dialer: FreedomDialer
    private let loop: EventLoop
    private let logger: Logger
    private var channel: Channel?
    private var binding = false
    private var pending: [(ByteBuffer, Destination)] = []
    private static let maxPending = 64
    private var resolved: [Destination: NIOCore.SocketAddress] = [:]
    private var closed = false

    init(dialer: FreedomDialer, destination: Destination, sink: DownstreamSink, loop: EventLoop, logger: Logger) {
        self.sink = sink
        self.dialer = dialer
        self.loop = loop
        self.logger = logger
    }

    func write(_ buffer: ByteBuffer) {}

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !closed else { return }
        if let channel, let address = resolved[destination] {
            guard channel.isWritable else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
            return
        }
        guard pending.count < Self.maxPending else { return }
        pending.append((buffer, destination))
        if resolved[destination] == nil { resolve(destination) }
    }

    private func resolve(_ destination: Destination) {
        dialer.resolve(on: loop, destination.address, port: destination.port).whenComplete { [weak self] result in
            guard let self, !self.closed else { return }
            switch result {
            case .success(let address):
                self.resolved[destination] = address
                self.bindIfNeeded(family: address.protocol)
                self.drain()
            case .failure(let error):
                self.logger.debug("udp: cannot resolve \(destination): \(error)")
                self.pending.removeAll { $0.1 == destination }
            }
        }
    }

    private func bindIfNeeded(family: NIOBSDSocket.ProtocolFamily) {
        guard channel == nil, !binding else { return }
        binding = true
        // A dual-stack socket when the first destination is IPv6; IPv4 otherwise.
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(self) }
            }
            .bind(host: family == .inet6 ? "::" : "0.0.0.0", port: 0)
            .whenComplete { [weak self] result in
                guard let self else { return }
                self.binding = false
                switch result {
                case .success(let channel):
                    if self.closed { channel.close(promise: nil); return }
                    self.channel = channel
                    self.drain()
                case .failure(let error):
                    self.logger.debug("udp: bind failed: \(error)")
                    self.close()
                    self.sink?.downstreamFinished(error: true)
                }
            }
    }

    private func drain() {
        guard let channel else { return }
        var keep: [(ByteBuffer, Destination)] = []
        for (b, d) in pending {
            if let a = resolved[d] {
                channel.write(AddressedEnvelope(remoteAddress: a, data: b), promise: nil)
            } else {
                keep.append((b, d))
            }
        }
        pending = keep
        channel.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let source = Destination(network: .udp, address: Self.address(envelope.remoteAddress),
                                 port: UInt16(envelope.remoteAddress.port ?? 0))
        sink?.downstreamDatagram(envelope.data, source: source)
    }

    func channelReadComplete(context: ChannelHandlerContext) { sink?.flushDownstream() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP unreachable and the like: UDP carries on.
        logger.debug("udp: \(error)")
    }

    static func address(_ a: NIOCore.SocketAddress) -> VMessAddress {
        switch a {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { .ipv4(Array($0)) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // IPv4-mapped addresses from a dual-stack socket are reported as IPv4.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                return .ipv4(Array(bytes[12..<16]))
            }
            return .ipv6(bytes)
        default:
            return .domain(a.description)
        }
    }

    func flush() {}
    func finishUpstream() {}

    func close() {
        closed = true
        channel?.close(promise: nil)
        channel = nil
        pending.removeAll()
    }

    var isWritable: Bool { true }
    func downstreamWritabilityChanged() {}
}

/// The blackhole outbound: swallows everything; with `response.type: http` it answers a 403 first.
final class BlackholeOutbound: Outbound {
    let tag: String?
    let http: Bool

    init(tag: String?, settings: BlackholeSettings) {
        self.tag = tag
        self.http = settings.httpResponse
    }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        let link = BlackholeLink()
        if http, destination.network == .tcp {
            loop.execute {
                var payload = ByteBufferAllocator().buffer(string:
                    "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nCache-Control: max-age=3600, public\r\nContent-Length: 0\r\n\r\n")
                sink.downstream(&payload)
                sink.flushDownstream()
                sink.downstreamFinished(error: false)
            }
        }
        return link
    }
}

final class BlackholeLink: UpstreamLink {
    func write(_ buffer: ByteBuffer) {}
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {}
    func flush() {}
    func finishUpstream() {}
    func close() {}
    var isWritable: Bool { true }
    func downstreamWritabilityChanged() {}
}
