import NIOCore

/// Receive-buffer sizing for every proxied TCP connection: accepted (WorkerProcess) and dialed
/// (DialOptions.prepare, the path of freedom and of the VMess client's transports).
///
/// NIO keeps each stream channel's last receive buffer for its next read (NIOPooledRecvBufferAllocator)
/// and never shrinks it, so the first size is what an idle connection holds per socket for as long as
/// it lives, and a connection that once moved bulk data keeps the size it grew to. 512 bytes cover a
/// VMess request header with a short first chunk and most interactive reads; the adaptive
/// allocator jumps to 8 KiB after the first read that fills it (and reads again in the same event),
/// so a larger first request costs one more read, and bulk transfers one short read. With the
/// earlier 4 KiB (accepted) and NIO's 2 KiB default (dialed), the two buffers were 6 of the ~17 KiB
/// of heap an idle proxied connection cost; 1 KiB each, then 512 bytes, took that to 2 and then 1
/// (Benchmarks/README.md, "Memory per idle connection").
enum StreamReceiveAllocator {
    /// The 64 KiB ceiling stays: 16 or 32 KiB reads cost 15-45 % more CPU per GB on downloads
    /// (measured with compare.py), and `releaseSpareBuffers` gives most of the memory back anyway.
    static let adaptive = AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 512, maximum: 65536)

    /// How long a proxied connection has to be quiet before its sockets give back spare receive
    /// buffers. Short enough that a burst's buffers do not sit out a keep-alive period, long enough
    /// that a connection pausing between requests does not reallocate them every time.
    static let quietBeforeRelease: TimeAmount = .seconds(5)

    /// A quiet proxied connection: its client socket (nil when the inbound handler is not on a
    /// socket channel of its own) and whatever its outbound link holds.
    static func releaseIdle(client: Channel?, link: UpstreamLink?) {
        if let client { releaseSpareBuffers(of: client) }
        link?.releaseIdleMemory()
    }

    /// Drops all but one of the receive buffers `channel` keeps for its next reads.
    ///
    /// While a read's buffer is still referenced (a write towards the other side holds it until the
    /// kernel takes it) the pool takes another one, up to one per read of a readable event
    /// (`maxMessagesPerRead`, 4); each can have grown to 64 KiB and none is ever freed, so a
    /// connection that once moved bulk data kept ~300 kB while idle. NIO has no call to empty the
    /// pool, but lowering `maxMessagesPerRead` trims it to that many buffers and raising it again
    /// restores batched reads without reallocating anything. One buffer per socket stays. The
    /// freed buffers go back to the kernel with the next HeapTrim.
    ///
    /// `channel` must be a NIOPosix socket channel (accepted, dialed, or an mKCP session's local
    /// end): HTTP/2 stream channels trap on this option.
    static func releaseSpareBuffers(of channel: Channel) {
        guard let options = channel.syncOptions,
              let reads = try? options.getOption(ChannelOptions.maxMessagesPerRead), reads > 1 else { return }
        try? options.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        try? options.setOption(ChannelOptions.maxMessagesPerRead, value: reads)
        HeapTrim.request(on: channel.eventLoop)
    }
}
