import NIOCore
import Shared

/// UDP with routing: every datagram is routed by its own destination (XUDP and SOCKS name one per
/// packet), through one link per chosen outbound, opened on first use. Replies from every link go to
/// the same sink. A datagram whose route needs the destination's addresses first is dropped when
/// already `maxPending` are waiting, like any UDP queue here.
///
/// Bounded: one link per outbound that carries a destination per datagram (freedom, blackhole), one
/// per (outbound, destination) for the others (a vmess outbound's UDP request has one fixed
/// destination), at most `maxLinks` in all (the oldest is closed to make room); the per-destination
/// choices are remembered for at most `maxRemembered` destinations.
final class RoutedUDPLink: UpstreamLink {
    static let maxRemembered = 256
    static let maxPending = 64
    static let maxLinks = 64

    private struct LinkKey: Hashable {
        var index: Int
        /// nil when the outbound takes a destination per datagram.
        var destination: Destination?
    }

    private let selector: OutboundSelector
    private let origin: RequestOrigin
    private weak var sink: DownstreamSink?
    private let loop: EventLoop
    private let level: LevelPolicy
    private var links: [LinkKey: UpstreamLink] = [:]
    private var linkOrder: [LinkKey] = []
    private var choices: [Destination: Int] = [:]
    private var resolving: [Destination: [ByteBuffer]] = [:]
    private var pendingCount = 0
    private var closed = false

    init(selector: OutboundSelector, origin: RequestOrigin, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) {
        self.selector = selector
        self.origin = origin
        self.sink = sink
        self.loop = loop
        self.level = level
    }

    func write(_ buffer: ByteBuffer) {}

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) {
        guard !closed else { return }
        if let index = choices[destination] { return send(buffer, to: destination, via: index) }
        switch selector.choose(destination, origin: origin) {
        case .outbound(let index):
            remember(destination, index)
            send(buffer, to: destination, via: index)
        case .resolveFirst:
            guard pendingCount < Self.maxPending else { return }
            pendingCount += 1
            if resolving[destination] != nil {
                resolving[destination]!.append(buffer)
                return
            }
            resolving[destination] = [buffer]
            selector.resolve(destination, loop).whenComplete { [weak self] result in
                guard let self, !self.closed, let waiting = self.resolving.removeValue(forKey: destination) else { return }
                self.pendingCount -= waiting.count
                let index = self.selector.chooseAfterResolving(destination, origin: self.origin, result)
                self.remember(destination, index)
                for b in waiting { self.send(b, to: destination, via: index) }
            }
        }
    }

    private func remember(_ destination: Destination, _ index: Int) {
        if choices.count >= Self.maxRemembered { choices.remove(at: choices.startIndex) }
        choices[destination] = index
    }

    private func send(_ buffer: ByteBuffer, to destination: Destination, via index: Int) {
        guard let sink else { return }
        let outbound = selector.outbounds[index]
        let key = LinkKey(index: index, destination: outbound.carriesPacketDestinations ? nil : destination)
        let link: UpstreamLink
        if let existing = links[key] {
            link = existing
        } else {
            if links.count >= Self.maxLinks, let oldest = linkOrder.first {
                linkOrder.removeFirst()
                links.removeValue(forKey: oldest)?.close()
            }
            link = outbound.open(destination, sink: sink, loop: loop, level: level)
            links[key] = link
            linkOrder.append(key)
        }
        link.writeDatagram(buffer, to: destination)
        link.flush()
    }

    func flush() { for l in links.values { l.flush() } }
    func finishUpstream() { for l in links.values { l.finishUpstream() } }

    func close() {
        closed = true
        for l in links.values { l.close() }
        links.removeAll()
        linkOrder.removeAll()
        resolving.removeAll()
        pendingCount = 0
    }

    var isWritable: Bool { true }
    func downstreamWritabilityChanged() { for l in links.values { l.downstreamWritabilityChanged() } }
}
