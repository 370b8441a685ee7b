import NIOCore
import Shared

/// A link whose outbound is not chosen yet: the routing rules need the destination's addresses
/// (domainStrategy IPIfNonMatch / IPOnDemand), so the domain is resolved first. Until then writes are
/// held (HeldWrites), like a connect in flight; afterwards everything goes to the chosen outbound's link.
final class DeferredLink: UpstreamLink {
    private weak var sink: DownstreamSink?
    private var link: UpstreamLink?
    private var held: HeldWrites
    private var closed = false

    init(selector: OutboundSelector, destination: Destination, origin: RequestOrigin, sink: DownstreamSink, loop: EventLoop,
         level: LevelPolicy) {
        self.sink = sink
        held = HeldWrites(level: level)
        selector.resolve(destination, loop).whenComplete { [weak self] result in
            guard let self, !self.closed, let sink = self.sink else { return }
            let index = selector.chooseAfterResolving(destination, origin: origin, result)
            let link = selector.outbounds[index].open(destination, sink: sink, loop: loop, level: level)
            self.link = link
            self.held.release(to: link)
            sink.upstreamWritabilityChanged()
        }
    }

    func write(_ buffer: ByteBuffer) {
        guard !closed else { return }
        if let link { return link.write(buffer) }
        held.append(buffer)
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }

    func flush() { link?.flush() }

    func finishUpstream() {
        if let link { link.finishUpstream() } else { held.requestFinish() }
    }

    func close() {
        closed = true
        link?.close()
        link = nil
        held.discard()
    }

    var isWritable: Bool { link?.isWritable ?? held.isWritable }
    var isConnecting: Bool { link?.isConnecting ?? !closed }
    func downstreamWritabilityChanged() { link?.downstreamWritabilityChanged() }
}
