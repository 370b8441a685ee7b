import Logging
import NIOCore
import NIOPosix
import Shared

/// The freedom outbound: direct connections (TCP) and one datagram socket per session (UDP).
final class FreedomOutbound: Outbound {
    let tag: String?
    let dialer: FreedomDialer
    let counters: WorkerCounters
    let logger: Logger
    /// `proxySettings`: the outbound that carries this one's requests (set once every outbound
    /// exists); the `redirect` still applies. nil: direct.
    var proxy: Outbound?

    /// `dns`: the worker's built-in DNS (a `dns` section), used by the UseIP* strategies.
    init(tag: String?, settings: FreedomSettings, counters: WorkerCounters, logger: Logger, dns: DNSResolver? = nil,
         dial: DialOptions = .none) {
        self.tag = tag
        self.dialer = FreedomDialer(settings: settings, dns: dns, dial: dial)
        self.counters = counters
        self.logger = logger
    }

    var carriesPacketDestinations: Bool { proxy?.carriesPacketDestinations ?? true }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        if let proxy {
            let (host, port) = dialer.target(for: destination.address, port: destination.port)
            let target = Destination(network: destination.network, address: IPLiteral.parse(host) ?? .domain(host),
                                     port: UInt16(clamping: port))
            return proxy.open(target, sink: sink, loop: loop, level: level)
        }
        switch destination.network {
        case .tcp:
            return TCPLink(dialer: dialer, destination: destination, sink: sink, loop: loop, level: level, logger: logger)
        case .udp:
            return UDPLink(dialer: dialer, destination: destination, sink: sink, loop: loop, counters: counters, logger: logger)
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
    private let connecting = PendingConnect()

    init(dialer: FreedomDialer, destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy,
         logger: Logger) {
        self.sink = sink
        pendingLimit = max(level.bufferSize, 16) * 1024
        let watermark = min(max(level.bufferSize, 16), 1024) * 1024
        let relay = TargetRelayHandler(sink: sink)
        self.relay = relay
        let connecting = self.connecting
        dialer.connectTCP(on: loop, to: destination.address, port: destination.port,
                          timeout: .seconds(Int64(max(level.handshake, 4)))) { channel in
            guard connecting.register(channel) else { return channel.eventLoop.makeFailedFuture(PendingConnect.Cancelled()) }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(relay)
                _ = channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: watermark / 2, high: watermark))
            }
        }.whenComplete { [weak self] result in
            connecting.finish()
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
                guard let self, !self.closed else { return }
                logger.debug("connect to \(destination) failed: \(error)")
                self.closed = true
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
        connecting.cancel()
        channel?.close(promise: nil)
        channel = nil
        pending.removeAll()
        pendingBytes = 0
        relay?.sink = nil
    }

    var isWritable: Bool {
        if let channel { return channel.isWritable }
        return pendingBytes < pendingLimit
    }

    var isConnecting: Bool { channel == nil && !closed }

    func downstreamWritabilityChanged() { relay?.resumeReads() }
}

/// UDP through one unconnected datagram socket per session: each datagram goes to its own
/// destination (fixed for VMess command 2, per packet for XUDP/SOCKS), every reply comes back with
/// its source. Bounded: datagrams waiting for a resolution or the socket are dropped (and counted)
/// past `maxPending`, and the destination → address map keeps at most `maxDestinations` entries
/// (an XUDP client may name a new destination in every packet).
final class UDPLink: UpstreamLink, ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    static let maxPending = 64
    static let maxDestinations = 256

    private weak var sink: DownstreamSink?
    private let dialer: FreedomDialer
    private let loop: EventLoop
    private let counters: WorkerCounters
    private let logger: Logger
    private var channel: Channel?
    private var binding = false
    private var pending: [(ByteBuffer, Destination)] = []
    private var resolved: [Destination: NIOCore.SocketAddress] = [:]
    private var resolving = Set<Destination>()
    private var closed = false

    init(dialer: FreedomDialer, destination: Destination, sink: DownstreamSink, loop: EventLoop, counters: WorkerCounters,
         logger: Logger) {
        self.sink = sink
        self.dialer = dialer
        self.loop = loop
        self.counters = counters
        self.logger = logger
    }

    func write(_ buffer: ByteBuffer) {}

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !closed else { return }
        if let channel, let address = resolved[destination] {
            guard channel.isWritable else { return counters.drop(.udpQueueFull) }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
            return
        }
        guard pending.count < Self.maxPending else { return counters.drop(.udpQueueFull) }
        pending.append((buffer, destination))
        if resolved[destination] == nil { resolve(destination) }
    }

    var destinationCount: Int { resolved.count }

    /// At most one resolution per destination in flight (and so at most `maxPending`).
    private func resolve(_ destination: Destination) {
        guard resolving.insert(destination).inserted else { return }
        dialer.resolve(on: loop, destination.address, port: destination.port).whenComplete { [weak self] result in
            guard let self, !self.closed else { return }
            self.resolving.remove(destination)
            switch result {
            case .success(let address):
                if self.resolved.count >= Self.maxDestinations {
                    // Forget one mapping (any: they are all cheap to redo) rather than grow.
                    self.resolved.remove(at: self.resolved.startIndex)
                }
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
            .readingWholeDatagrams()
            .channelInitializer { channel in
                self.dialer.dial.sockopt.apply(to: channel, tcp: false).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(self)
                }
            }
            .bind(host: dialer.dial.datagramHost(ipv6: family == .inet6), port: 0)
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
        // A mapping forgotten while its datagrams waited for the socket: look it up again.
        for (_, d) in keep where resolved[d] == nil { resolve(d) }
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

    var carriesPacketDestinations: Bool { true }

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
