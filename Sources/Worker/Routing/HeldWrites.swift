import NIOCore
import Shared

/// The client's writes to a link whose outbound is not chosen yet (DeferredLink waits for a
/// resolution, SniffingLink for the first bytes): queued up to the level's bufferSize (beyond it the
/// holder reports itself not writable and the inbound stops reading its client), then handed to the
/// chosen link in order, with the half-close if one was asked for meanwhile.
struct HeldWrites {
    private var buffers: [ByteBuffer] = []
    private var bytes = 0
    private let limit: Int
    private(set) var finishRequested = false

    init(level: LevelPolicy) {
        limit = max(level.bufferSize, 16) * 1024
    }

    var isWritable: Bool { bytes < limit }

    mutating func append(_ buffer: ByteBuffer) {
        buffers.append(buffer)
        bytes += buffer.readableBytes
    }

    mutating func requestFinish() { finishRequested = true }

    /// Hands everything held to `link` and forgets it.
    mutating func release(to link: UpstreamLink) {
        for buffer in buffers { link.write(buffer) }
        if finishRequested { link.finishUpstream() }
        link.flush()
        discard()
    }

    mutating func discard() {
        buffers.removeAll()
        bytes = 0
    }
}
