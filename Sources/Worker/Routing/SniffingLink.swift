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
final class SniffingLink: PendingLink {
    static let deadline = TimeAmount.milliseconds(200)

    private let selector: OutboundSelector
    private let policy: SniffingPolicy
    private let destination: Destination
    private let origin: RequestOrigin
    private let loop: EventLoop
    private let level: LevelPolicy
    /// A copy of the first bytes (at most ContentSniffer.window): the held buffers stay as they came.
    private var first: [UInt8] = []
    private var timer: Scheduled<Void>?

    init(selector: OutboundSelector, policy: SniffingPolicy, destination: Destination, origin: RequestOrigin,
         sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) {
        self.selector = selector
        self.policy = policy
        self.destination = destination
        self.origin = origin
        self.loop = loop
        self.level = level
        super.init(sink: sink, level: level)
        timer = loop.scheduleTask(in: Self.deadline) { [weak self] in
            guard let self else { return }
            self.decide(ContentSniffer.sniff(self.first[...]))
            self.sink?.upstreamWritabilityChanged()
        }
    }

    override func write(_ buffer: ByteBuffer) {
        guard link == nil, !closed else { return super.write(buffer) }
        super.write(buffer)  // held
        let room = ContentSniffer.window - first.count
        if room > 0 { first += buffer.readableBytesView.prefix(room) }
        let result = ContentSniffer.sniff(first[...])
        if result != .needMore { decide(result) }
    }

    /// The client has said everything it will: decide with what it sent.
    override func finishUpstream() {
        super.finishUpstream()
        if link == nil { decide(ContentSniffer.sniff(first[...])) }
    }

    override func close() {
        timer?.cancel()
        super.close()
    }

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
        first = []
        attach(selector.open(destination, origin: origin, sink: sink, loop: loop, level: level))
    }
}
