import NIOCore
import Shared

/// A TCP request of an inbound with `sniffing`: nothing is opened until the client's first bytes show
/// their protocol (HTTP Host, TLS server name, BitTorrent), show that they are none of those, or
/// `deadline` passes (a protocol where the server speaks first sends nothing). Then the request is
/// routed with what was found (the `protocol` rules; the sniffed name replaces the destination for
/// `destOverride` protocols, or only for routing with `routeOnly`) and the held bytes follow, unchanged.
///
/// Like V2Ray's dispatcher, which waits up to 200 ms, but a ClientHello or request head split over
/// several reads is waited for (not given up after two reads), and anything that cannot be one of
/// the sniffed protocols is decided at once instead of costing the wait.
final class SniffingLink: UpstreamLink {
    static let deadline = TimeAmount.milliseconds(200)

    private weak var sink: DownstreamSink?
    private let selector: OutboundSelector
    private let policy: SniffingPolicy
    private let destination: Destination
    private let origin: RequestOrigin
    private let loop: EventLoop
    private let level: LevelPolicy
    private var link: UpstreamLink?
    private var held: HeldWrites
    /// A copy of the first bytes (at most ContentSniffer.window): the held buffers stay as they came.
    private var first: [UInt8] = []
    private var timer: Scheduled<Void>?
    private var closed = false

    init(selector: OutboundSelector, policy: SniffingPolicy, destination: Destination, origin: RequestOrigin,
         sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) {
        self.selector = selector
        self.policy = policy
        self.destination = destination
        self.origin = origin
        self.sink = sink
        self.loop = loop
        self.level = level
        held = HeldWrites(level: level)
        timer = loop.scheduleTask(in: Self.deadline) { [weak self] in
            guard let self else { return }
            self.decide(ContentSniffer.sniff(self.first[...]))
            self.sink?.upstreamWritabilityChanged()
        }
    }

    func write(_ buffer: ByteBuffer) {
        guard !closed else { return }
        if let link { return link.write(buffer) }
        held.append(buffer)
        let room = ContentSniffer.window - first.count
        if room > 0 { first += buffer.readableBytesView.prefix(room) }
        let result = ContentSniffer.sniff(first[...])
        if result != .needMore { decide(result) }
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }

    func flush() { link?.flush() }

    /// The client has said everything it will: decide with what it sent.
    func finishUpstream() {
        if let link { return link.finishUpstream() }
        held.requestFinish()
        decide(ContentSniffer.sniff(first[...]))
    }

    func close() {
        closed = true
        timer?.cancel()
        link?.close()
        link = nil
        held.discard()
    }

    var isWritable: Bool { link?.isWritable ?? held.isWritable }
    var isConnecting: Bool { link?.isConnecting ?? !closed }
    func downstreamWritabilityChanged() { link?.downstreamWritabilityChanged() }

    private func decide(_ result: SniffResult) {
        guard link == nil, !closed, let sink else { return }
        timer?.cancel()
        timer = nil
        let outcome = policy.apply(result)
        var origin = self.origin
        origin.sniffing = nil
        origin.sniffedProtocol = outcome.sniffedProtocol
        origin.routingDomain = outcome.routingDomain
        var destination = self.destination
        if let address = outcome.address { destination.address = address }
        let link = selector.open(destination, origin: origin, sink: sink, loop: loop, level: level)
        self.link = link
        first = []
        held.release(to: link)
    }
}
