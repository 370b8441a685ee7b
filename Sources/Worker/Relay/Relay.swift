import NIOCore
import Shared

/// Where a proxied request goes.
struct Destination: Hashable, CustomStringConvertible {
    enum Network: String { case tcp, udp }
    var network: Network
    var address: VMessAddress
    var port: UInt16
    var description: String { "\(network):\(address):\(port)" }
}

/// The inbound half of a relayed request: it receives what the outbound got from the target.
/// Every call happens on the worker's event loop.
protocol DownstreamSink: AnyObject {
    /// Stream bytes from the target.
    func downstream(_ buffer: inout ByteBuffer)
    /// One datagram from `source` (UDP); the sink may drop it when the client is slow.
    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination)
    func flushDownstream()
    /// The target will send nothing more (EOF, or `error` when it failed).
    func downstreamFinished(error: Bool)
    /// Whether the client can take more now; the outbound holds its reads while false.
    var downstreamWritable: Bool { get }
    /// The outbound can take more again after it reported `isWritable == false`.
    func upstreamWritabilityChanged()
}

/// The outbound half: takes the client's plaintext towards the target.
protocol UpstreamLink: AnyObject {
    func write(_ buffer: ByteBuffer)
    /// One datagram to `destination` (XUDP and SOCKS carry a destination per packet).
    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination)
    func flush()
    /// The client sends nothing more: half-close towards the target.
    func finishUpstream()
    func close()
    /// False while the link holds more than its bound; the inbound then stops reading its client.
    var isWritable: Bool { get }
    /// The client became writable again: resume reading the target.
    func downstreamWritabilityChanged()
    /// True while the link is still connecting to its target (Mux bounds connects in flight).
    var isConnecting: Bool { get }
    /// The connection has been quiet for a while (StreamReceiveAllocator.releaseIdle): give back
    /// what is only needed while data moves, a VMess outbound's cipher contexts. Links without
    /// ciphers of their own (freedom, Mux client sessions, UDP, blackhole) have nothing to give.
    func releaseIdleMemory()
}

extension UpstreamLink {
    var isConnecting: Bool { false }
    func releaseIdleMemory() {}
}

/// An outbound handler (freedom, blackhole, vmess, ...): opens links for requests.
protocol Outbound: AnyObject {
    var tag: String? { get }
    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink
    /// Whether one of its UDP links sends each datagram to the destination given with it (freedom),
    /// rather than to the one it was opened for (a vmess outbound's UDP request).
    var carriesPacketDestinations: Bool { get }
}

extension Outbound {
    var carriesPacketDestinations: Bool { false }
}
