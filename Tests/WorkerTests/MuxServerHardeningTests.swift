import Glibc
import Logging
import NIOCore
import NIOPosix
import XCTest
@testable import Shared
@testable import Worker

/// Regressions for issue 7's Mux.Cool findings, on the real `MuxServer` with the real freedom
/// outbound and real loopback sockets; only the VMess connection to the client is stood in for by
/// a sink that records the frames and says whether the client reads.
final class MuxServerHardeningTests: XCTestCase {
    /// The client side of the VMess connection, as the mux server sees it.
    final class ClientSink: DownstreamSink {
        var bytes = ByteBuffer()
        var writes = 0
        var flushes = 0
        var writable = true
        var resumed = 0
        var finished: Bool?
        func downstream(_ buffer: inout ByteBuffer) { writes += 1; bytes.writeBuffer(&buffer) }
        func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
        func flushDownstream() { flushes += 1 }
        func downstreamFinished(error: Bool) { finished = error }
        var downstreamWritable: Bool { writable }
        func upstreamWritabilityChanged() { resumed += 1 }

        func frames() throws -> [MuxFrame] {
            var out: [MuxFrame] = []
            while let f = try MuxFrame.parse(&bytes) { out.append(f) }
            return out
        }
    }

    var group: MultiThreadedEventLoopGroup!
    var loop: EventLoop { group.next() }
    let logger = Logger(label: "test")

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    func makeServer(_ sink: ClientSink, counters: WorkerCounters, udpToClient: Int = 65_507) -> MuxServer {
        var policy = LevelPolicy()
        policy.handshake = 60
        let freedom = FreedomOutbound(tag: nil, settings: FreedomSettings(), counters: counters, logger: logger)
        return MuxServer(sink: sink, outbounds: OutboundSelector(outbounds: [freedom]), origin: RequestOrigin(), loop: loop, level: policy, counters: counters, udpToClient: udpToClient, logger: logger)
    }

    func frames(_ fs: [MuxFrame]) -> ByteBuffer {
        var b = ByteBuffer()
        for f in fs { f.write(into: &b) }
        return b
    }

    func onLoop<T>(_ body: @escaping () throws -> T) throws -> T {
        try loop.submit(body).wait()
    }

    /// (a) Keep frames for sessions that never existed are answered with End frames: one coalesced,
    /// flushed write per read, and while the client does not read them the client is not read
    /// either, so a client that sends them and never reads cannot grow the worker's memory.
    func testUnknownSessionFramesAreCoalescedFlushedAndHoldReadsWhileClientIsNotReading() throws {
        let sink = ClientSink()
        let counters = WorkerCounters()
        let mux = makeServer(sink, counters: counters)
        let data = ByteBuffer(bytes: [1, 2, 3])
        let flood = frames((1...2000).map { MuxFrame(sessionID: UInt16($0), status: .keep, data: data) })
        try onLoop {
            sink.writable = false  // the client has stopped reading
            mux.write(flood)
        }
        XCTAssertEqual(sink.writes, 1, "one write for the whole read")
        XCTAssertEqual(sink.flushes, 1, "flushed")
        let ends = try sink.frames()
        XCTAssertEqual(ends.count, 2000)
        XCTAssertTrue(ends.allSatisfy { $0.status == .end })
        XCTAssertEqual(counters.dropped["mux_unknown_session"], 2000)
        XCTAssertFalse(try onLoop { mux.isWritable }, "the client's reads are held while it does not read")
        try onLoop {
            sink.writable = true
            mux.downstreamWritabilityChanged()
        }
        XCTAssertEqual(sink.resumed, 1, "reads resume once the client reads again")
        XCTAssertTrue(try onLoop { mux.isWritable })
    }

    /// A listening socket whose accept queue is full: the kernel drops further SYNs, so a connect to
    /// it neither succeeds nor fails until its timeout, like an address that never answers.
    func blackholeListener() throws -> (fd: Int32, port: UInt16, fillers: [Int32]) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(listen(fd, 0), 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        // Fill the queue (backlog 0 holds one; a second may complete too), non-blocking.
        var fillers: [Int32] = []
        for _ in 0..<3 {
            let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, len) } }
            fillers.append(c)
        }
        usleep(100_000)
        return (fd, UInt16(bigEndian: addr.sin_port), fillers)
    }

    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// (b) A New frame that re-uses a session id ends the old session and its connect in flight; and
    /// connects in flight are bounded per mux connection. A stream of 14-byte New frames toward an
    /// address that never answers must not leave one socket per frame.
    func testReusedSessionIDCancelsItsConnectAndConnectsInFlightAreBounded() throws {
        let target = try blackholeListener()
        defer { close(target.fd); target.fillers.forEach { close($0) } }
        let sink = ClientSink()
        let counters = WorkerCounters()
        let mux = makeServer(sink, counters: counters)
        let before = Self.openDescriptors()
        let new = { (id: UInt16) in
            MuxFrame(sessionID: id, status: .new, network: .tcp, port: target.port, address: .ipv4([127, 0, 0, 1]))
        }
        // The same id 500 times, across many reads.
        for _ in 0..<50 {
            try onLoop { mux.write(self.frames((0..<10).map { _ in new(7) })) }
        }
        usleep(200_000)
        let reused = Self.openDescriptors() - before
        XCTAssertLessThanOrEqual(reused, 4, "re-used ids keep at most the live session's socket (\(reused) extra descriptors)")
        XCTAssertEqual(try onLoop { mux.connectingCount }, 1)

        // Distinct ids in one read: at most maxConnecting connects, the rest refused with End+error.
        try onLoop { mux.write(self.frames((100..<400).map { new(UInt16($0)) })) }
        usleep(200_000)
        let distinct = Self.openDescriptors() - before
        XCTAssertLessThanOrEqual(distinct, MuxServer.maxConnecting + 4, "\(distinct) extra descriptors")
        XCTAssertEqual(try onLoop { mux.connectingCount }, MuxServer.maxConnecting)
        XCTAssertFalse(try onLoop { mux.isWritable }, "the client is not read while the connects are in flight")
        let refused = try sink.frames().filter { $0.status == .end && $0.option.contains(.error) }
        XCTAssertEqual(refused.count, 300 - (MuxServer.maxConnecting - 1))
        XCTAssertGreaterThan(counters.dropped["mux_connect_limit"] ?? 0, 0)

        try onLoop { mux.close() }
        usleep(200_000)
        XCTAssertLessThanOrEqual(Self.openDescriptors() - before, 1, "closing the mux closes every connect")
    }

    /// A UDP echo on loopback that answers every datagram with `reply(size)` bytes.
    func udpEcho(replySize: @escaping (Int) -> Int) throws -> Channel {
        try DatagramBootstrap(group: group)
            .readingWholeDatagrams()
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(UDPEcho(replySize: replySize)) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    final class UDPEcho: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let replySize: (Int) -> Int
        init(replySize: @escaping (Int) -> Int) { self.replySize = replySize }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let e = unwrapInboundIn(data)
            let n = replySize(e.data.readableBytes)
            // The reply repeats the request's bytes to the requested size, so corruption shows.
            var out = context.channel.allocator.buffer(capacity: n)
            let src = Array(e.data.readableBytesView)
            for i in 0..<n { out.writeInteger(src.isEmpty ? UInt8(i & 0xFF) : src[i % src.count]) }
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: e.remoteAddress, data: out)), promise: nil)
        }
    }

    func waitFor(_ what: String, _ condition: () throws -> Bool) throws {
        for _ in 0..<200 {
            if try condition() { return }
            usleep(10_000)
        }
        XCTFail("timed out waiting for \(what)")
    }

    /// Large datagrams over XUDP (and plain Mux UDP): a 4 KiB datagram no longer aborts the whole mux
    /// connection, and replies up to the configured limit (here the largest UDP payload) come back
    /// whole, one frame each; larger ones are dropped whole and counted.
    func testLargeDatagramsTravelWholeBothWays() throws {
        let echo = try udpEcho { $0 }
        defer { try? echo.close().wait() }
        let port = UInt16(echo.localAddress!.port!)
        let sink = ClientSink()
        let counters = WorkerCounters()
        let mux = makeServer(sink, counters: counters)
        let sizes = [1, 2048, 2049, 4096, 8192, 16_384, 65_507]
        let payloads = sizes.map { n in (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) } }
        try onLoop {
            // XUDP: session 0, per-packet destinations.
            mux.write(self.frames([MuxFrame(sessionID: 0, status: .new, option: .data, network: .udp, port: port,
                                            address: .ipv4([127, 0, 0, 1]), data: ByteBuffer(bytes: payloads[0]))]))
            for p in payloads.dropFirst() {
                mux.write(self.frames([MuxFrame(sessionID: 0, status: .keep, option: .data, network: .udp, port: port,
                                                address: .ipv4([127, 0, 0, 1]), data: ByteBuffer(bytes: p))]))
            }
        }
        var replies: [[UInt8]] = []
        try waitFor("\(sizes.count) replies") {
            replies += try onLoop { try sink.frames() }.compactMap { $0.data.map { Array($0.readableBytesView) } }
            return replies.count >= sizes.count
        }
        XCTAssertNil(sink.finished, "the mux connection is still up")
        XCTAssertEqual(replies.map(\.count).sorted(), sizes.sorted())
        XCTAssertEqual(Set(replies), Set(payloads), "every datagram came back whole and unchanged")
    }

    /// A reply larger than the client can take whole (ClientLimits.udpDatagramToClient) is dropped
    /// whole and counted; the session carries on.
    func testReplyOverTheClientLimitIsDroppedWholeAndCounted() throws {
        let echo = try udpEcho { $0 }
        defer { try? echo.close().wait() }
        let port = UInt16(echo.localAddress!.port!)
        let sink = ClientSink()
        let counters = WorkerCounters()
        let mux = makeServer(sink, counters: counters, udpToClient: 1000)
        try onLoop {
            mux.write(self.frames([MuxFrame(sessionID: 0, status: .new, option: .data, network: .udp, port: port,
                                            address: .ipv4([127, 0, 0, 1]), data: ByteBuffer(bytes: [UInt8](repeating: 7, count: 1001)))]))
            mux.write(self.frames([MuxFrame(sessionID: 0, status: .keep, option: .data, network: .udp, port: port,
                                            address: .ipv4([127, 0, 0, 1]), data: ByteBuffer(bytes: [UInt8](repeating: 8, count: 1000)))]))
        }
        var replies: [[UInt8]] = []
        try waitFor("the small reply") {
            replies += try onLoop { try sink.frames() }.compactMap { $0.data.map { Array($0.readableBytesView) } }
            return !replies.isEmpty
        }
        XCTAssertEqual(replies, [[UInt8](repeating: 8, count: 1000)])
        XCTAssertEqual(try onLoop { counters.dropped["udp_too_large"] }, 1)
        XCTAssertNil(sink.finished)
        try onLoop { mux.close() }
    }

    /// (c) An XUDP session that names a new destination in every packet keeps a bounded map; (d) its
    /// replies are dropped (and counted), not queued, while the client is not reading.
    func testXUDPDestinationsAreBoundedAndRepliesDropWhenClientIsNotReading() throws {
        let echo = try udpEcho { _ in 100 }
        defer { try? echo.close().wait() }
        let port = UInt16(echo.localAddress!.port!)
        let counters = WorkerCounters()
        let sink = ClientSink()
        let link = try onLoop {
            UDPLink(dialer: FreedomDialer(settings: FreedomSettings()), destination: Destination(network: .udp, address: .ipv4([127, 0, 0, 1]), port: port),
                    sink: sink, loop: self.loop, counters: counters, logger: self.logger)
        }
        for batch in 0..<20 {
            try onLoop {
                for i in 0..<50 {
                    let n = batch * 50 + i
                    // 1000 destinations: 127.0.x.y on the echo's port (only 127.0.0.1 answers).
                    let dest = Destination(network: .udp, address: .ipv4([127, 0, UInt8(n >> 8), UInt8(n & 0xFF)]), port: port)
                    link.writeDatagram(ByteBuffer(bytes: [1]), to: dest)
                }
            }
            usleep(5_000)
        }
        try waitFor("the bound") { try onLoop { link.destinationCount } > 0 }
        XCTAssertLessThanOrEqual(try onLoop { link.destinationCount }, UDPLink.maxDestinations)
        try onLoop { link.close() }

        // (d) through the mux: replies while the client is not writable are dropped and counted.
        let mux = makeServer(sink, counters: counters)
        try onLoop {
            sink.writable = false
            mux.write(self.frames([MuxFrame(sessionID: 0, status: .new, option: .data, network: .udp, port: port,
                                            address: .ipv4([127, 0, 0, 1]), data: ByteBuffer(bytes: [9]))]))
        }
        try waitFor("a dropped reply") { try onLoop { counters.dropped["udp_slow_client"] ?? 0 } >= 1 }
        XCTAssertEqual(try onLoop { try sink.frames() }.filter { $0.data != nil }.count, 0, "nothing queued")
        try onLoop { mux.close() }
    }
}
