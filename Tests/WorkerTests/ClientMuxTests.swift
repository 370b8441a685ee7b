import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// The Mux.Cool client over a recording link on an EmbeddedEventLoop: the frames it writes (§10.2,
/// §10.3), how it dispatches the server's frames, and that one bad frame ends every session while a
/// finished session leaves the others alone.
final class ClientMuxTests: XCTestCase {
    /// Stands in for the VMess link: records what the mux writes, reports back like a link would.
    final class RecordingLink: UpstreamLink {
        var written = ByteBuffer()
        var closed = false
        var writable = true
        func write(_ buffer: ByteBuffer) { var b = buffer; written.writeBuffer(&b) }
        func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { write(buffer) }
        func flush() {}
        func finishUpstream() {}
        func close() { closed = true }
        var isWritable: Bool { writable }
        func downstreamWritabilityChanged() {}

        /// Every complete frame written so far (and forgets them).
        func frames() throws -> [MuxFrame] {
            var out: [MuxFrame] = []
            while let f = try MuxFrame.parse(&written) { out.append(f) }
            return out
        }
    }

    final class RecordingSink: DownstreamSink {
        var received: [UInt8] = []
        var datagrams: [([UInt8], Destination)] = []
        var finished: Bool?
        var writable = true
        func downstream(_ buffer: inout ByteBuffer) { received += buffer.readableBytesView }
        func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) { datagrams.append((Array(buffer.readableBytesView), source)) }
        func flushDownstream() {}
        func downstreamFinished(error: Bool) { finished = error }
        var downstreamWritable: Bool { writable }
        func upstreamWritabilityChanged() {}
    }

    let loop = EmbeddedEventLoop()
    let tcpTarget = Destination(network: .tcp, address: .domain("example.com"), port: 443)
    let udpTarget = Destination(network: .udp, address: .ipv4([8, 8, 8, 8]), port: 53)

    func makeConnection(concurrency: Int = 8) -> (MuxClientPool, MuxClientConnection, RecordingLink) {
        let pool = MuxClientPool(concurrency: concurrency, logger: Logger(label: "test"))
        let connection = MuxClientConnection(pool: pool, loop: loop, logger: Logger(label: "test"))
        let link = RecordingLink()
        connection.attach(link)
        return (pool, connection, link)
    }

    func serverFrames(_ frames: [MuxFrame]) -> ByteBuffer {
        var out = ByteBuffer()
        for f in frames { f.write(into: &out) }
        return out
    }

    func testNewCarriesFirstDataAndStreamsAreSlicedAt8192() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        let sink = RecordingSink()
        let session = connection.openSession(tcpTarget, sink: sink)
        XCTAssertEqual(session.id, 1)
        session.write(ByteBuffer(bytes: [UInt8](repeating: 7, count: 20000)))
        session.finishUpstream()
        let frames = try link.frames()
        XCTAssertEqual(frames.map(\.status), [.new, .keep, .keep, .end])
        XCTAssertEqual(frames[0].network, .tcp)
        XCTAssertEqual(frames[0].address, .domain("example.com"))
        XCTAssertEqual(frames[0].port, 443)
        XCTAssertEqual(frames.map { $0.data?.readableBytes ?? 0 }, [8192, 8192, 3616, 0])
        XCTAssertTrue(frames.allSatisfy { $0.sessionID == 1 })
        XCTAssertEqual(connection.openSession(tcpTarget, sink: RecordingSink()).id, 2, "ids count up per connection")
    }

    func testNewWithoutDataAfter100ms() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        _ = connection.openSession(tcpTarget, sink: RecordingSink())
        loop.advanceTime(by: .milliseconds(99))
        XCTAssertEqual(try link.frames().count, 0)
        loop.advanceTime(by: .milliseconds(2))
        let frames = try link.frames()
        XCTAssertEqual(frames.map(\.status), [.new])
        XCTAssertNil(frames[0].data)
    }

    func testUDPSessionOneDatagramPerFrame() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        let sink = RecordingSink()
        let session = connection.openSession(udpTarget, sink: sink)
        session.writeDatagram(ByteBuffer(bytes: [1, 2, 3]), to: udpTarget)
        session.writeDatagram(ByteBuffer(bytes: [UInt8](repeating: 0, count: 3000)), to: udpTarget)  // too big: dropped
        session.writeDatagram(ByteBuffer(bytes: [4]), to: udpTarget)
        let frames = try link.frames()
        XCTAssertEqual(frames.map(\.status), [.new, .keep])
        XCTAssertEqual(frames[0].network, .udp)
        XCTAssertEqual(frames.map { Array($0.data!.readableBytesView) }, [[1, 2, 3], [4]])

        var reply = serverFrames([MuxFrame(sessionID: 1, status: .keep, data: ByteBuffer(bytes: [9, 9]))])
        connection.downstream(&reply)
        XCTAssertEqual(sink.datagrams.map(\.0), [[9, 9]])
        XCTAssertEqual(sink.datagrams.first?.1, udpTarget)
    }

    func testServerFramesAreDispatchedAndUnknownSessionsEnded() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        let a = RecordingSink(), b = RecordingSink()
        let sa = connection.openSession(tcpTarget, sink: a)
        _ = connection.openSession(tcpTarget, sink: b)
        sa.write(ByteBuffer(bytes: [1]))
        _ = try link.frames()
        // Split across reads at an awkward place: frames are independent of read boundaries.
        let all = serverFrames([
            MuxFrame(sessionID: 2, status: .keep, data: ByteBuffer(bytes: [2, 2])),
            MuxFrame(sessionID: 1, status: .keep, data: ByteBuffer(bytes: [1, 1, 1])),
            MuxFrame(sessionID: 9, status: .keep, data: ByteBuffer(bytes: [0])),
            MuxFrame(sessionID: 1, status: .end),
        ])
        var first = all.getSlice(at: 0, length: 5)!
        var rest = all.getSlice(at: 5, length: all.readableBytes - 5)!
        connection.downstream(&first)
        connection.downstream(&rest)
        connection.flushDownstream()
        XCTAssertEqual(a.received, [1, 1, 1])
        XCTAssertEqual(b.received, [2, 2])
        XCTAssertEqual(a.finished, false)
        XCTAssertNil(b.finished)
        let replies = try link.frames()
        XCTAssertEqual(replies.map(\.status), [.end])
        XCTAssertEqual(replies.first?.sessionID, 9)
    }

    func testBadFrameEndsEverySessionAndTheConnection() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        let a = RecordingSink(), b = RecordingSink()
        _ = connection.openSession(tcpTarget, sink: a)
        _ = connection.openSession(udpTarget, sink: b)
        var garbage = ByteBuffer(bytes: [0x00, 0x04, 0x00, 0x01, 0x07, 0x00])  // status 7 does not exist
        connection.downstream(&garbage)
        XCTAssertEqual(a.finished, true)
        XCTAssertEqual(b.finished, true)
        XCTAssertTrue(link.closed)
        XCTAssertFalse(connection.canAccept)
    }

    func testIdleConnectionClosesAfter16s() throws {
        let (pool, connection, link) = makeConnection()
        _ = pool
        let sink = RecordingSink()
        let s = connection.openSession(tcpTarget, sink: sink)
        s.write(ByteBuffer(bytes: [1]))
        s.finishUpstream()
        var end = serverFrames([MuxFrame(sessionID: 1, status: .end)])
        connection.downstream(&end)
        s.close()
        loop.advanceTime(by: .seconds(15))
        XCTAssertFalse(link.closed)
        loop.advanceTime(by: .seconds(2))
        XCTAssertTrue(link.closed)
    }

    func testConcurrencyBoundsSessionsPerConnection() {
        let (pool, connection, _) = makeConnection(concurrency: 2)
        _ = pool
        _ = connection.openSession(tcpTarget, sink: RecordingSink())
        XCTAssertTrue(connection.canAccept)
        let second = connection.openSession(tcpTarget, sink: RecordingSink())
        XCTAssertFalse(connection.canAccept)
        second.close()
        XCTAssertTrue(connection.canAccept)
    }

    func testSlowClientHoldsTheConnectionsReads() {
        let (pool, connection, _) = makeConnection()
        _ = pool
        let a = RecordingSink(), b = RecordingSink()
        _ = connection.openSession(tcpTarget, sink: a)
        _ = connection.openSession(tcpTarget, sink: b)
        XCTAssertTrue(connection.downstreamWritable)
        b.writable = false
        XCTAssertFalse(connection.downstreamWritable)
    }
}
