import NIOCore
import NIOPosix
@testable import Worker
import XCTest

/// The receive sizing in NIO's own buffer pool, and on a real loopback TCP connection (what a
/// quiet connection gives back end to end is measured by QuietConnectionMemoryInteropTests and
/// Benchmarks/compare.py).
final class StreamReceiveAllocatorTests: XCTestCase {
    /// One simulated read through `pool`: `fill` bytes of the buffer the pool hands out (all of it
    /// when nil). Returns that buffer's capacity.
    private func read(_ pool: inout NIOPooledRecvBufferAllocator, fill: Int? = nil) -> Int {
        let (buffer, count) = pool.buffer(allocator: ByteBufferAllocator()) { b -> Int in
            let n = fill ?? b.writableBytes
            b.writeRepeatingByte(0x5A, count: n)
            return n
        }
        pool.record(actualReadBytes: count)
        return buffer.capacity
    }

    /// Reads grow to 256 KiB while they fill their buffers, but the one buffer a channel keeps never
    /// grows past the pooled limit: once reads are small again, they land in an 8 KiB buffer, not in
    /// a bulk one. (NIO's adaptive allocator alone keeps the largest buffer it ever read into.)
    func testBulkReadsGetBuffersOfTheirOwnAndThePoolStaysSmall() {
        var pool = NIOPooledRecvBufferAllocator(capacity: Int(StreamReceiveAllocator.readsPerEvent),
                                                recvAllocator: StreamReceiveAllocator.adaptive)
        XCTAssertEqual(read(&pool, fill: 100), 512, "the first read's buffer")
        var largest = 0
        for _ in 0..<12 { largest = max(largest, read(&pool)) }
        XCTAssertEqual(largest, StreamReceiveAllocator.maximum, "full reads grow to the bulk size")
        XCTAssertEqual(pool.count, 1, "one buffer kept")

        var capacities: [Int] = []
        for _ in 0..<64 { capacities.append(read(&pool, fill: 1)) }
        XCTAssertGreaterThan(capacities.first!, StreamReceiveAllocator.pooledLimit, "still sized for bulk right after it")
        XCTAssertLessThanOrEqual(capacities.last!, StreamReceiveAllocator.pooledLimit,
                                 "small reads come back to the kept buffer, which never held a bulk read")
        XCTAssertEqual(pool.count, 1)
    }

    private final class Echo: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    }

    private final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var received = ByteBuffer()
        var want = 0
        var done: EventLoopPromise<ByteBuffer>?
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            received.writeBuffer(&b)
            if received.readableBytes >= want, let done {
                self.done = nil
                done.succeed(received)
                received = ByteBuffer()
            }
        }
    }

    /// A proxied stream socket (`proxiedStreamReads`) reads once per event with this sizing, and
    /// bulk round trips through it come back intact.
    func testProxiedStreamSocketsReadOncePerEventAndStayIntact() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let accepted = group.next().makePromise(of: Channel.self)
        let server = try ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.recvAllocator, value: StreamReceiveAllocator.adaptive)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: StreamReceiveAllocator.readsPerEvent)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.pipeline.addHandler(Echo())
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let collect = Collect()
        let client = try ClientBootstrap(group: group)
            .proxiedStreamReads()
            .channelInitializer { $0.pipeline.addHandler(collect) }
            .connect(to: server.localAddress!).wait()
        defer { try? client.close().wait() }
        let serverSide = try accepted.futureResult.wait()

        func roundTrip(_ count: Int) throws {
            var payload = ByteBuffer()
            for i in 0..<count { payload.writeInteger(UInt8(truncatingIfNeeded: i &* 31 &+ 7)) }
            let done = try client.eventLoop.submit { () -> EventLoopFuture<ByteBuffer> in
                let p = client.eventLoop.makePromise(of: ByteBuffer.self)
                collect.want = count
                collect.done = p
                client.writeAndFlush(payload, promise: nil)
                return p.futureResult
            }.wait()
            XCTAssertEqual(try done.wait(), payload)
        }

        try roundTrip(1 << 20)  // grows both sides' reads into the bulk regime
        let reads = try client.eventLoop.submit { try client.syncOptions!.getOption(ChannelOptions.maxMessagesPerRead) }.wait()
        XCTAssertEqual(reads, 1)
        let sizing = try client.eventLoop.submit { try client.syncOptions!.getOption(ChannelOptions.recvAllocator) }.wait()
        XCTAssertTrue(sizing is StreamReceiveAllocator)
        try roundTrip(1 << 20)
    }
}
