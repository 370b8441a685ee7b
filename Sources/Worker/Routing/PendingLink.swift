import NIOCore
import Shared

/// A link whose outbound is not chosen yet (DeferredLink waits for a resolution, SniffingLink for the
/// client's first bytes). The client's writes are held, up to the level's bufferSize (beyond it the
/// link reports itself not writable and the inbound stops reading its client), like a connect in
/// flight; `attach` hands them to the chosen link in order, with the half-close if one was asked for
/// meanwhile, and from then on everything goes straight through.
class PendingLink: UpstreamLink {
    weak var sink: DownstreamSink?
    private(set) var link: UpstreamLink?
    private(set) var closed = false
    private var held: [ByteBuffer] = []
    private var heldBytes = 0
    private let limit: Int
    private var finishRequested = false

    init(sink: DownstreamSink, level: LevelPolicy) {
        self.sink = sink
        limit = max(level.bufferSize, 16) * 1024
    }

    /// The chosen link: receives what was held, then everything.
    func attach(_ link: UpstreamLink) {
        self.link = link
        for buffer in held { link.write(buffer) }
        if finishRequested { link.finishUpstream() }
        link.flush()
        held.removeAll()
        heldBytes = 0
    }

    func write(_ buffer: ByteBuffer) {
        guard !closed else { return }
        if let link { return link.write(buffer) }
        held.append(buffer)
        heldBytes += buffer.readableBytes
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
        held.removeAll()
        heldBytes = 0
    }

    var isWritable: Bool { link?.isWritable ?? (heldBytes < limit) }
    var isConnecting: Bool { link?.isConnecting ?? !closed }
    func downstreamWritabilityChanged() { link?.downstreamWritabilityChanged() }
}
