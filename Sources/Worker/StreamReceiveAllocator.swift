import NIOCore
import NIOPosix

/// Receive-buffer sizing for every proxied stream socket (`ClientBootstrap.proxiedStreamReads()`):
/// accepted (WorkerProcess, SharedSocketAcceptor), dialed (DialOptions.prepare, the path of
/// freedom and of the VMess client's transports), an mKCP session's local end on either side, and
/// both ends of a proxySettings socketpair.
///
/// Two regimes, because NIO keeps each stream channel's receive buffer for its next read
/// (NIOPooledRecvBufferAllocator) and never shrinks it:
/// - **Pooled, up to `pooledLimit` (8 KiB).** Interactive traffic and the start of every transfer
///   read into the channel's kept buffer, which grows with the adaptive size and never past the
///   limit. The first size is what an idle connection holds per socket: 512 bytes cover a VMess
///   request header with a short first chunk and most interactive reads (the adaptive size jumps
///   to 8 KiB after a read that fills it). 512 bytes each on both sockets took an idle proxied
///   connection from ~17 to ~10 kB (Benchmarks/README.md, "Memory per idle connection").
/// - **Bulk, above it, up to `maximum` (256 KiB).** Once reads fill more than the pooled limit,
///   each read gets a buffer of its own, freed as soon as the relay has encoded or forwarded it, so
///   a connection keeps nothing of its bulk phase: the memory is per read in flight, reused through
///   the worker's heap (WorkerMain tunes glibc to keep it there rather than mmap and unmap each
///   one), and given back by HeapTrim once connections go quiet. Against the earlier 64 KiB pooled
///   reads: a keep-alive connection holds ~25 instead of ~140 kB after moving data, downloads cost
///   ~10 % less CPU per GB (a quarter of the reads, so fewer window-update ACKs, each of which makes
///   the kernel push the sender's next segments on the reader's time on loopback), uploads the same
///   (Benchmarks/README.md, "Receive buffers").
///
/// NIO's pool skips reuse when the allocator gives no size hint and says the next buffer may be
/// larger (`nextBufferSize() == nil`, `record` returning true): that is how bulk reads bypass it.
/// One read per readable event (`readsPerEvent`) keeps the pool at one buffer: with more, a busy
/// pooled buffer (still referenced by a write towards the other side) makes the pool keep a second,
/// third and fourth one for good; the channel's epoll registration is level-triggered, so data left
/// in the socket is read on the next loop turn.
struct StreamReceiveAllocator: RecvByteBufferAllocator {
    static let pooledLimit = 8_192
    static let maximum = 262_144
    /// `maxMessagesPerRead` of every proxied TCP socket (see above).
    static let readsPerEvent: UInt = 1

    private var sizing = AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 512, maximum: Self.maximum)

    /// A fresh allocator for one channel (each channel keeps its own copy of the sizing state).
    static var adaptive: StreamReceiveAllocator { StreamReceiveAllocator() }

    /// Whether the next read is a bulk one, in a buffer of its own.
    var nextReadIsBulk: Bool { sizing.nextBufferSize()! > Self.pooledLimit }

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer { sizing.buffer(allocator: allocator) }

    func nextBufferSize() -> Int? { nextReadIsBulk ? nil : sizing.nextBufferSize() }

    mutating func record(actualReadBytes: Int) -> Bool {
        let mayGrow = sizing.record(actualReadBytes: actualReadBytes)
        return mayGrow || nextReadIsBulk
    }

    /// How long a proxied connection has to be quiet before it gives back memory it no longer needs.
    /// Short enough that a burst's buffers do not sit out a keep-alive period, long enough that a
    /// connection pausing between requests does not reallocate them every time.
    static let quietBeforeRelease: TimeAmount = .seconds(5)

    /// A quiet proxied connection gives back what it no longer needs: whatever its outbound link
    /// holds (cipher contexts), and, through HeapTrim on `loop`, free heap. Its sockets' reads need
    /// nothing: bulk reads' buffers are back in the heap already, and each socket's pool holds one
    /// buffer of at most `pooledLimit` (one read per event).
    static func releaseIdle(on loop: EventLoop?, link: UpstreamLink?) {
        link?.releaseIdleMemory()
        if let loop { HeapTrim.request(on: loop) }
    }
}

extension ClientBootstrap {
    /// The receive sizing of a proxied stream socket (StreamReceiveAllocator).
    func proxiedStreamReads() -> ClientBootstrap {
        channelOption(ChannelOptions.recvAllocator, value: StreamReceiveAllocator.adaptive)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: StreamReceiveAllocator.readsPerEvent)
    }
}
