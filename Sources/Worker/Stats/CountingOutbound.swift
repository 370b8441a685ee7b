// `outbound>>>TAG>>>traffic>>>uplink|downlink`, and the metrics' per-outbound bytes and connections:
// a tagged outbound (or one whose API counters the config keeps) is wrapped once at start; each
// link it opens then counts what goes through it. Untagged outbounds without API counters are not
// wrapped and pay nothing.

import NIOCore
import Shared

final class CountingOutbound: Outbound {
    let inner: Outbound
    let meter: TrafficMeter
    /// nil: an untagged outbound (API counters only).
    let connections: ConnectionMeter?

    init(_ inner: Outbound, meter: TrafficMeter, connections: ConnectionMeter? = nil) {
        self.inner = inner
        self.meter = meter
        self.connections = connections
    }

    var tag: String? { inner.tag }
    var carriesPacketDestinations: Bool { inner.carriesPacketDestinations }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        let countingSink = CountingSink(sink, meter: meter)
        return CountingLink(inner.open(destination, sink: countingSink, loop: loop, level: level), sink: countingSink, meter: meter,
                            connections: connections)
    }

    /// Wraps the outbounds whose counters `switches` asks for.
    static func wrap(_ outbounds: [Outbound], switches: StatSwitches, registry: StatRegistry) -> [Outbound] {
        outbounds.map { outbound in
            let meter = registry.outboundMeter(switches, tag: outbound.tag)
            let connections = outbound.tag.flatMap { $0.isEmpty ? nil : registry.connectionMeter(.outbound, $0) }
            return meter.up == nil && meter.down == nil ? outbound : CountingOutbound(outbound, meter: meter, connections: connections)
        }
    }
}

/// Counts the client's bytes on their way to the outbound. Holds the counting sink: the outbound's
/// link keeps its sink weakly, and this link lives as long as the connection, so its end is where
/// the outbound connection counts as closed (close() may come more than once, or not at all after
/// a half-close finished both ways).
final class CountingLink: UpstreamLink {
    private let inner: UpstreamLink
    private let sink: CountingSink
    private let meter: TrafficMeter
    private let connections: ConnectionMeter?

    init(_ inner: UpstreamLink, sink: CountingSink, meter: TrafficMeter, connections: ConnectionMeter? = nil) {
        self.inner = inner
        self.sink = sink
        self.meter = meter
        self.connections = connections
        connections?.open()
    }

    // Links are created and released on the worker's event loop (the connection's handlers hold them).
    deinit { connections?.close() }

    func write(_ buffer: ByteBuffer) {
        meter.countUp(buffer.readableBytes)
        inner.write(buffer)
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        meter.countUp(buffer.readableBytes)
        inner.writeDatagram(buffer, to: destination)
    }

    func flush() { inner.flush() }
    func finishUpstream() { inner.finishUpstream() }
    func close() { inner.close() }
    var isWritable: Bool { inner.isWritable }
    func downstreamWritabilityChanged() { inner.downstreamWritabilityChanged() }
    var isConnecting: Bool { inner.isConnecting }
}

/// Counts the outbound's bytes on their way back to the client.
final class CountingSink: DownstreamSink {
    private weak var sink: DownstreamSink?
    private let meter: TrafficMeter

    init(_ sink: DownstreamSink, meter: TrafficMeter) {
        self.sink = sink
        self.meter = meter
    }

    func downstream(_ buffer: inout ByteBuffer) {
        meter.countDown(buffer.readableBytes)
        sink?.downstream(&buffer)
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
        meter.countDown(buffer.readableBytes)
        sink?.downstreamDatagram(buffer, source: source)
    }

    func flushDownstream() { sink?.flushDownstream() }
    func downstreamFinished(error: Bool) { sink?.downstreamFinished(error: error) }
    var downstreamWritable: Bool { sink?.downstreamWritable ?? false }
    func upstreamWritabilityChanged() { sink?.upstreamWritabilityChanged() }
}
