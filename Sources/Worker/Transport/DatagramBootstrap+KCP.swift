import NIOCore
import NIOPosix

extension DatagramBootstrap {
    /// Every mKCP UDP socket's options (the listening one, a session's own, a dialer's).
    ///
    /// The receive buffer matters more than for TCP: an mKCP sender flushes up to its whole window
    /// at once (V2Ray's too), and a burst larger than the receive buffer is dropped by the kernel
    /// before this one-thread event loop reads it, to be recovered only by retransmission. 1 MiB
    /// holds a default receive window's burst (776 segments at V2Ray's defaults need ~1.7 MiB of
    /// kernel memory at most, rarely all at once) without queueing seconds of datagrams in front of
    /// a slow reader, which would inflate the measured RTT; the kernel caps it at
    /// net.core.rmem_max (deploy/sysctl.d raises it). The send buffer stays the kernel's default on purpose: it is
    /// what paces a burst (a datagram's memory is charged to the sender until it is delivered), and
    /// a large one lets a whole window go out at once, past the device backlog
    /// (net.core.netdev_max_backlog, 1000 packets), where loopback drops it.
    func kcpSocketOptions() -> DatagramBootstrap {
        channelOption(ChannelOptions.maxMessagesPerRead, value: 64)
            // V2Ray's MTU is at most 1460; anything longer is not one of its datagrams.
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 1 << 20)
    }
}
