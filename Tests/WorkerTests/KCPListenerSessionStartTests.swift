import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest
@testable import Shared
@testable import Worker
#if canImport(Glibc)
import Glibc
#endif

/// Which datagrams start an mKCP session (KCPListener), over real loopback UDP: only a client's
/// first segment, data number 0 with nothing acknowledged yet. A later segment also carries
/// sendingNext 0 until the client's first acknowledgement; when one reached a worker that did not
/// hold the session, it used to start a second session there, whose own connected socket could
/// then take the client's datagrams from the real one.
final class KCPListenerSessionStartTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func tearDown() {
        try? group.syncShutdownGracefully()
        super.tearDown()
    }

    func testOnlyTheFirstSegmentStartsASession() throws {
        let settings = KCPSettings()
        let loop = group.next()
        let accepted = NIOLockedValueBox(0)
        let listener = try KCPListener(settings: settings, logger: Logger(label: "test")) { fd, _ in
            accepted.withLockedValue { $0 += 1 }
            close(fd)
            return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        let server = try DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(listener) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? server.close().wait() }
        let client = try DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? client.close().wait() }
        let codec = try KCPPacketCodec(settings: settings)

        func send(conv: UInt16, number: UInt32, sendingNext: UInt32) throws {
            var segments = ByteBuffer()
            KCPSegment.data(KCPDataSegment(conv: conv, option: 0, timestamp: 1, number: number, sendingNext: sendingNext,
                                           payload: ByteBuffer(string: "request"))).write(to: &segments)
            var datagram = ByteBuffer()
            codec.seal(segments, into: &datagram)
            try client.writeAndFlush(AddressedEnvelope(remoteAddress: server.localAddress!, data: datagram)).wait()
        }
        func acceptedAfter(_ seconds: Double, until target: Int) -> Int {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline, accepted.withLockedValue({ $0 }) < target { usleep(10_000) }
            return accepted.withLockedValue { $0 }
        }

        // Segments 3 and 1 of a conversation whose segment 0 went elsewhere: no session.
        try send(conv: 9, number: 3, sendingNext: 0)
        try send(conv: 9, number: 1, sendingNext: 0)
        XCTAssertEqual(acceptedAfter(0.5, until: 1), 0, "a later segment started a session")
        XCTAssertEqual(try loop.submit { listener.sessionCount }.wait(), 0)
        // Segment 0 of another conversation from the same client: a session.
        try send(conv: 10, number: 0, sendingNext: 0)
        XCTAssertEqual(acceptedAfter(5, until: 1), 1, "the first segment did not start a session")
    }
}
