import NIOCore
import NIOPosix

extension DatagramBootstrap {
    /// Largest UDP payload a socket can deliver (IPv6 jumbograms aside): 65,535 − 8 (UDP header).
    static let largestDatagram = 65_535 - 8

    /// Every UDP socket of the worker reads whole datagrams. NIO's default receive buffer is 2048
    /// bytes and recvmsg silently cuts a longer datagram to fit, so a 4 KB reply would reach the
    /// client as its first 2 KB, passed on as if whole. One buffer per read of the largest size costs
    /// only address space: the payload is encrypted or framed into a right-sized buffer straight away.
    func readingWholeDatagrams() -> DatagramBootstrap {
        channelOption(ChannelOptions.recvAllocator,
                      value: FixedSizeRecvByteBufferAllocator(capacity: Self.largestDatagram + 1))
    }
}
