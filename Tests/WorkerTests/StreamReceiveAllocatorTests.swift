import NIOCore
import NIOPosix
@testable import Worker
import XCTest

/// releaseSpareBuffers on a real loopback TCP connection: batched reads come back as they were and
/// bytes keep flowing unchanged afterwards (what it gives back is measured by
/// QuietConnectionMemoryInteropTests and Benchmarks/compare.py).
final class StreamReceiveAllocatorTests: XCTestCase {
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

    func testReleaseKeepsBatchedReadsAndTheStreamIntact() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let accepted = group.next().makePromise(of: Channel.self)
        let server = try ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.recvAllocator, value: StreamReceiveAllocator.adaptive)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.pipeline.addHandler(Echo())
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let collect = Collect()
        let client = try ClientBootstrap(group: group)
            .channelOption(ChannelOptions.recvAllocator, value: StreamReceiveAllocator.adaptive)
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

        try roundTrip(1 << 20)  // grows both sides' receive buffers
        for channel in [serverSide, client] {
            let reads = try channel.eventLoop.submit { () -> UInt in
                StreamReceiveAllocator.releaseSpareBuffers(of: channel)
                return try channel.syncOptions!.getOption(ChannelOptions.maxMessagesPerRead)
            }.wait()
            XCTAssertEqual(reads, 4, "reads per event restored after the trim")
        }
        try roundTrip(1 << 20)
    }
}
