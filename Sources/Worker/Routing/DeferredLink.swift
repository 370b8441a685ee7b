import NIOCore
import Shared

/// A link whose outbound is not chosen yet: the routing rules need the destination's addresses
/// (domainStrategy IPIfNonMatch / IPOnDemand), so the domain is resolved first. Until then writes are
/// queued up to the level's bufferSize (then `isWritable` turns false and the client is not read),
/// like a connect in flight; afterwards everything goes to the chosen outbound's link.
final class DeferredLink: UpstreamLink {
    private weak var sink: DownstreamSink?
    private var link: UpstreamLink?
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private let pendingLimit: Int
    private var finishRequested = false
    private var closed = false

    init(selector: OutboundSelector, destination: Destination, origin: RequestOrigin, sink: DownstreamSink, loop: EventLoop,
         level: LevelPolicy) {
        self.sink = sink
        pendingLimit = max(level.bufferSize, 16) * 1024
        selector.resolve(destination, loop).whenComplete { [weak self] result in
            guard let self, !self.closed, let sink = self.sink else { return }
            let index = selector.chooseAfterResolving(destination, origin: origin, result)
            let link = selector.outbounds[index].open(destination, sink: sink, loop: loop, level: level)
            self.link = link
            for p in self.pending { link.write(p) }
            self.pending.removeAll()
            self.pendingBytes = 0
            if self.finishRequested { link.finishUpstream() }
            link.flush()
            sink.upstreamWritabilityChanged()
        }
    }

    func write(_ buffer: ByteBuffer) {
        guard !closed else { return }
        if let link { return link.write(buffer) }
        pending.append(buffer)
        pendingBytes += buffer.readableBytes
    }

    func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }

    func flush() { link?.flush() }

    func finishUpstream() {
        if let link { link.finishUpstream() } else { finishRequested = true }
    }

    func close() {
        closed = true
        link?.close()
        link = nil
        pending.removeAll()
        pendingBytes = 0
    }

    var isWritable: Bool { link?.isWritable ?? (pendingBytes < pendingLimit) }
    var isConnecting: Bool { link?.isConnecting ?? !closed }
    func downstreamWritabilityChanged() { link?.downstreamWritabilityChanged() }
}
