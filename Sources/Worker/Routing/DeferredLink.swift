import NIOCore
import Shared

/// A link whose outbound is not chosen yet: the routing rules need the destination's addresses
/// (domainStrategy IPIfNonMatch / IPOnDemand), so the domain is resolved first; the client's writes
/// are held meanwhile (PendingLink).
final class DeferredLink: PendingLink {
    init(selector: OutboundSelector, destination: Destination, origin: RequestOrigin, sink: DownstreamSink, loop: EventLoop,
         level: LevelPolicy) {
        super.init(sink: sink, level: level)
        selector.resolve(destination, loop).whenComplete { [weak self] result in
            guard let self, !self.closed, let sink = self.sink else { return }
            let index = selector.chooseAfterResolving(destination, origin: origin, result)
            self.attach(selector.outbounds[index].open(destination, sink: sink, loop: loop, level: level))
            sink.upstreamWritabilityChanged()
        }
    }
}
