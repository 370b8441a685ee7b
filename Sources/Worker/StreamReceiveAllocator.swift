import NIOCore

/// Receive-buffer sizing for every proxied TCP connection: accepted (WorkerProcess) and dialed
/// (DialOptions.prepare, the path of freedom and of the VMess client's transports).
///
/// NIO keeps each stream channel's last receive buffer for its next read (NIOPooledRecvBufferAllocator)
/// and never shrinks it, so the first size is what an idle connection holds per socket for as long as
/// it lives, and a connection that once moved bulk data keeps the size it grew to. 1 KiB covers a
/// VMess request header with its first chunk header and most interactive reads; the adaptive
/// allocator jumps to 16 KiB after the first read that fills it, so bulk transfers lose one short
/// read. With the earlier 4 KiB (accepted) and NIO's 2 KiB default (dialed), the two buffers were 6
/// of the ~17 KiB of heap an idle proxied connection cost (Benchmarks/README.md, "Memory per idle
/// connection").
enum StreamReceiveAllocator {
    static let adaptive = AdaptiveRecvByteBufferAllocator(minimum: 512, initial: 1024, maximum: 65536)
}
