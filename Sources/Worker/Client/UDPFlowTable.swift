import NIOCore
import Shared

/// The UDP flows of a local datagram socket: one outbound link per key (a SOCKS association keys by
/// destination, since a VMess UDP request has one fixed destination, §9.12; dokodemo-door keys by
/// client address), opened on the first datagram, closed after `idleTimeout` without traffic.
/// Bounded: at most `capacity` flows (the least recently used one makes room), and datagrams are
/// dropped rather than queued when the local socket is congested.
final class UDPFlowTable<Key: Hashable> {
    final class Flow: DownstreamSink {
        let key: Key
        let destination: Destination
        fileprivate var link: UpstreamLink?
        fileprivate var lastActivity = NIODeadline.now()
        fileprivate unowned let table: UDPFlowTable

        fileprivate init(key: Key, destination: Destination, table: UDPFlowTable) {
            self.key = key
            self.destination = destination
            self.table = table
        }

        func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
            lastActivity = .now()
            table.inbound.counters.bytesDown += buffer.readableBytes
            table.inbound.meter.countDown(buffer.readableBytes)
            table.deliver(key, buffer, source)
        }

        /// An outbound that only speaks streams hands back bytes; they are one datagram's worth.
        func downstream(_ buffer: inout ByteBuffer) { downstreamDatagram(buffer, source: destination) }

        func flushDownstream() { table.flush() }
        func downstreamFinished(error: Bool) { table.remove(self) }
        /// Always: a datagram for a congested local socket is dropped where it is sent
        /// (`deliver`), never held. Holding the outbound's reads instead would need a signal when
        /// the socket drains, and would queue datagrams behind a slow client for nothing.
        var downstreamWritable: Bool { true }
        func upstreamWritabilityChanged() {}
    }

    fileprivate let inbound: ClientInboundContext
    private let loop: EventLoop
    private let capacity: Int
    private let idleTimeout: TimeAmount
    fileprivate let deliver: (Key, ByteBuffer, Destination) -> Void
    fileprivate let flush: () -> Void
    /// The local client of a flow, for the access log.
    private let peer: (Key) -> String
    /// The local client of a flow, for routing.
    private let source: (Key) -> NIOCore.SocketAddress?
    private var flows: [Key: Flow] = [:]
    private var sweeper: RepeatedTask?
    private var closed = false

    init(inbound: ClientInboundContext, loop: EventLoop, capacity: Int, idleTimeout: TimeAmount,
         peer: @escaping (Key) -> String, source: @escaping (Key) -> NIOCore.SocketAddress?, deliver: @escaping (Key, ByteBuffer, Destination) -> Void,
         flush: @escaping () -> Void) {
        self.inbound = inbound
        self.loop = loop
        self.capacity = capacity
        self.idleTimeout = idleTimeout
        self.deliver = deliver
        self.flush = flush
        self.peer = peer
        self.source = source
    }

    var count: Int { flows.count }

    func send(_ payload: ByteBuffer, key: Key, destination: Destination) {
        guard !closed else { return }
        let flow = flows[key] ?? open(key: key, destination: destination)
        flow.lastActivity = .now()
        inbound.counters.bytesUp += payload.readableBytes
        inbound.meter.countUp(payload.readableBytes)
        flow.link?.writeDatagram(payload, to: destination)
        flow.link?.flush()
    }

    private func open(key: Key, destination: Destination) -> Flow {
        if flows.count >= capacity, let oldest = flows.values.min(by: { $0.lastActivity < $1.lastActivity }) {
            oldest.link?.close()
            flows[oldest.key] = nil
        }
        let flow = Flow(key: key, destination: destination, table: self)
        flows[key] = flow
        inbound.accessLog?.accepted(from: peer(key), network: "udp", destination: "\(destination.address):\(destination.port)",
                                    email: nil)
        let origin = RequestOrigin(inboundTag: inbound.config.tag, source: source(key))
        flow.link = inbound.outbounds.open(destination, origin: origin, sink: flow, loop: loop, level: inbound.level)
        if flows[key] !== flow { flow.link?.close() }  // failed on the spot
        if sweeper == nil {
            let every = TimeAmount.nanoseconds(max(idleTimeout.nanoseconds / 4, TimeAmount.seconds(1).nanoseconds))
            sweeper = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [weak self] _ in self?.sweep() }
        }
        return flow
    }

    fileprivate func remove(_ flow: Flow) {
        guard flows[flow.key] === flow else { return }
        flows[flow.key] = nil
        flow.link?.close()
    }

    private func sweep() {
        let limit = NIODeadline.now() - idleTimeout
        for flow in flows.values where flow.lastActivity < limit { remove(flow) }
    }

    func closeAll() {
        closed = true
        sweeper?.cancel()
        sweeper = nil
        for flow in flows.values { flow.link?.close() }
        flows.removeAll()
    }
}
