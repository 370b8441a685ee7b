import Logging
import NIOCore
import Shared

/// The `dns` outbound (V2Ray proxy/dns): DNS queries routed to it, as UDP datagrams or as
/// length-prefixed messages on a TCP stream, are answered by the worker's built-in resolver when
/// they ask for A or AAAA (DNSIncomingQuery); every other message is forwarded through a freedom link
/// to the configured server, else to where the client sent it, and its answers relayed back.
final class DNSOutbound: Outbound {
    let tag: String?
    let settings: DNSOutboundSettings
    let dns: DNSResolver
    /// Carries the forwarded messages (direct, like V2Ray's dns outbound's own dialer).
    let forwarder: FreedomOutbound
    let counters: WorkerCounters
    /// `settings.address` as a destination address.
    private let serverAddress: VMessAddress?

    init(tag: String?, settings: DNSOutboundSettings, dns: DNSResolver, counters: WorkerCounters, logger: Logger) {
        self.tag = tag
        self.settings = settings
        self.dns = dns
        self.counters = counters
        serverAddress = settings.address.map { text in
            (try? NIOCore.SocketAddress(ipAddress: text, port: 0)).map(UDPLink.address) ?? .domain(text)
        }
        forwarder = FreedomOutbound(tag: tag, settings: FreedomSettings(), counters: counters, logger: logger)
    }

    var carriesPacketDestinations: Bool { true }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        DNSOutboundLink(outbound: self, destination: destination, sink: sink, loop: loop, level: level)
    }

    /// Where a forwarded message goes: the configured server's parts over the original destination's.
    func forwardDestination(for original: Destination) -> Destination {
        var target = original
        if let network = settings.network { target.network = network == .tcp ? .tcp : .udp }
        if let serverAddress { target.address = serverAddress }
        if let port = settings.port { target.port = port }
        return target
    }
}

/// One client request to the dns outbound: a UDP session (each datagram a message) or a TCP stream
/// (length-prefixed messages). Answers go back in the client's own framing, whichever way they came.
///
/// Bounds: `maximumPending` lookups per link (a query beyond it is dropped, as a lost datagram would
/// be); one partial message per direction on a stream (DNSStreamFramer).
final class DNSOutboundLink: UpstreamLink, DownstreamSink {
    static let maximumPending = 64

    private let outbound: DNSOutbound
    private let destination: Destination
    private weak var sink: DownstreamSink?
    private let loop: EventLoop
    private let level: LevelPolicy
    private var clientFramer = DNSStreamFramer()
    private var forwardFramer = DNSStreamFramer()
    private var forward: UpstreamLink?
    /// The destination of the last forwarded UDP datagram: answers appear to come from it.
    private var lastForwardedTo: Destination
    private var pending = 0
    private var clientFinished = false
    private var forwardFinished = true
    private var finished = false
    private var closed = false

    init(outbound: DNSOutbound, destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) {
        self.outbound = outbound
        self.destination = destination
        self.sink = sink
        self.loop = loop
        self.level = level
        lastForwardedTo = destination
    }

    private var stream: Bool { destination.network == .tcp }

    // MARK: client → here

    func write(_ buffer: ByteBuffer) {
        guard stream, !closed else { return }
        var bytes = buffer
        clientFramer.append(&bytes)
        while let message = clientFramer.next() { handle(message, to: destination) }
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !closed else { return }
        handle(buffer, to: destination)
    }

    private func handle(_ message: ByteBuffer, to target: Destination) {
        guard let query = DNSIncomingQuery.parse(message) else { return forwardMessage(message, to: target) }
        guard pending < Self.maximumPending else { return outbound.counters.drop(.dnsPending) }
        pending += 1
        let family: FamilyResolver.Family = query.question.type == .a ? .ipv4 : .ipv6
        outbound.dns.resolve(name: query.question.name, family: family)
            .hop(to: loop)
            .whenComplete { [self] result in
                pending -= 1
                guard !closed else { return }
                let resolution = (try? result.get()) ?? .init(addresses: [], rcode: .serverFailure)
                let answer = query.answer(addresses: resolution.addresses, rcode: resolution.rcode.wireValue,
                                          ttl: outbound.settings.responseTTL, limit: stream ? 65_535 : query.udpPayloadLimit)
                deliver(ByteBuffer(bytes: answer), from: target)
                sink?.flushDownstream()
                finishIfDone()
            }
    }

    private func forwardMessage(_ message: ByteBuffer, to original: Destination) {
        let target = outbound.forwardDestination(for: original)
        if forward == nil {
            forwardFinished = false
            forward = outbound.forwarder.open(target, sink: self, loop: loop, level: level)
        }
        guard let forward else { return }
        if target.network == .tcp {
            forward.write(DNSStreamFramer.frame(message, allocator: ByteBufferAllocator()))
        } else {
            lastForwardedTo = original
            forward.writeDatagram(message, to: target)
        }
        forward.flush()
    }

    /// One whole message to the client, in its framing.
    private func deliver(_ message: ByteBuffer, from source: Destination) {
        guard let sink else { return }
        if stream {
            var framed = DNSStreamFramer.frame(message, allocator: ByteBufferAllocator())
            sink.downstream(&framed)
        } else {
            sink.downstreamDatagram(message, source: source)
        }
    }

    func flush() { forward?.flush() }

    func finishUpstream() {
        clientFinished = true
        forward?.finishUpstream()
        finishIfDone()
    }

    /// A stream ends once the client has finished, every lookup is answered and the forwarded side
    /// (if any) has ended too.
    private func finishIfDone() {
        guard stream, clientFinished, pending == 0, forwardFinished, !finished, !closed else { return }
        finished = true
        sink?.downstreamFinished(error: false)
    }

    func close() {
        closed = true
        forward?.close()
        forward = nil
    }

    var isWritable: Bool { forward?.isWritable ?? true }

    func downstreamWritabilityChanged() { forward?.downstreamWritabilityChanged() }

    // MARK: forwarded side → client

    func downstream(_ buffer: inout ByteBuffer) {
        forwardFramer.append(&buffer)
        while let message = forwardFramer.next() { deliver(message, from: lastForwardedTo) }
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
        deliver(buffer, from: lastForwardedTo)
    }

    func flushDownstream() { sink?.flushDownstream() }

    func downstreamFinished(error: Bool) {
        forwardFinished = true
        forward = nil
        finishIfDone()
    }

    var downstreamWritable: Bool { sink?.downstreamWritable ?? false }

    func upstreamWritabilityChanged() { sink?.upstreamWritabilityChanged() }
}
