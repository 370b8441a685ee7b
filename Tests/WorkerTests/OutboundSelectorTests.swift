import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// The worker's side of routing: a choice per request, acted on. The choice itself is the pure
/// Router's (Shared); here it is a closure, and the outbounds record what they were asked to open.
final class OutboundSelectorTests: XCTestCase {
    final class RecordingLink: UpstreamLink {
        var written: [[UInt8]] = []
        var datagrams: [([UInt8], Destination)] = []
        var finished = false
        var closed = false
        func write(_ buffer: ByteBuffer) { written.append(Array(buffer.readableBytesView)) }
        func writeDatagram(_ buffer: ByteBuffer, to destination: Destination) { datagrams.append((Array(buffer.readableBytesView), destination)) }
        func flush() {}
        func finishUpstream() { finished = true }
        func close() { closed = true }
        var isWritable: Bool { true }
        func downstreamWritabilityChanged() {}
    }

    final class RecordingOutbound: Outbound {
        let tag: String?
        let perPacket: Bool
        var opened: [(Destination, RecordingLink)] = []
        init(_ tag: String, perPacket: Bool = true) { self.tag = tag; self.perPacket = perPacket }
        var carriesPacketDestinations: Bool { perPacket }
        func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
            let link = RecordingLink()
            opened.append((destination, link))
            return link
        }
    }

    final class NullSink: DownstreamSink {
        var resumed = 0
        func downstream(_ buffer: inout ByteBuffer) {}
        func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
        func flushDownstream() {}
        func downstreamFinished(error: Bool) {}
        var downstreamWritable: Bool { true }
        func upstreamWritabilityChanged() { resumed += 1 }
    }

    let loop = EmbeddedEventLoop()
    let sink = NullSink()

    func tcp(_ address: VMessAddress, _ port: UInt16) -> Destination { Destination(network: .tcp, address: address, port: port) }
    func udp(_ address: VMessAddress, _ port: UInt16) -> Destination { Destination(network: .udp, address: address, port: port) }

    func testWithoutRulesEverythingGoesToTheFirstOutbound() {
        let a = RecordingOutbound("a"), b = RecordingOutbound("b")
        let selector = OutboundSelector(outbounds: [a, b])
        _ = selector.open(tcp(.domain("example.com"), 443), origin: RequestOrigin(), sink: sink, loop: loop, level: LevelPolicy())
        _ = selector.open(udp(.ipv4([1, 1, 1, 1]), 53), origin: RequestOrigin(), sink: sink, loop: loop, level: LevelPolicy())
        XCTAssertEqual(a.opened.count, 2)
        XCTAssertEqual(b.opened.count, 0)
    }

    func testTheChoiceSeesDestinationAndOriginAndOutOfRangeFallsBackToTheFirst() {
        let a = RecordingOutbound("a"), b = RecordingOutbound("b")
        var seen: [(Destination, String?)] = []
        let selector = OutboundSelector(outbounds: [a, b]) { destination, origin, _ in
            seen.append((destination, origin.user))
            return destination.port == 25 ? .outbound(1) : destination.port == 26 ? .outbound(7) : .outbound(0)
        }
        let origin = RequestOrigin(inboundTag: "in", user: "alice@x")
        _ = selector.open(tcp(.ipv4([10, 0, 0, 1]), 25), origin: origin, sink: sink, loop: loop, level: LevelPolicy())
        _ = selector.open(tcp(.ipv4([10, 0, 0, 1]), 26), origin: origin, sink: sink, loop: loop, level: LevelPolicy())
        XCTAssertEqual(b.opened.map(\.0.port), [25])
        XCTAssertEqual(a.opened.map(\.0.port), [26])
        XCTAssertEqual(seen.map(\.1), ["alice@x", "alice@x"])
    }

    /// IPIfNonMatch / IPOnDemand: the domain is resolved first; writes made meanwhile are held (and
    /// bounded) and reach the chosen outbound's link in order.
    func testResolveFirstHoldsWritesUntilTheChoice() throws {
        let a = RecordingOutbound("a"), b = RecordingOutbound("b")
        let answer = loop.makePromise(of: [[UInt8]].self)
        let selector = OutboundSelector(outbounds: [a, b], decide: { _, _, resolved in
            resolved == nil ? .resolveFirst : (resolved?.first == [10, 0, 0, 1] ? .outbound(1) : .outbound(0))
        }, resolve: { _, _ in answer.futureResult })
        var level = LevelPolicy()
        level.bufferSize = 16
        let link = selector.open(tcp(.domain("intranet.test"), 80), origin: RequestOrigin(), sink: sink, loop: loop, level: level)
        XCTAssertTrue(link.isConnecting)
        link.write(ByteBuffer(bytes: [1]))
        link.write(ByteBuffer(bytes: [2, 3]))
        link.write(ByteBuffer(bytes: [UInt8](repeating: 0, count: 16 * 1024)))
        XCTAssertFalse(link.isWritable, "bounded while waiting")
        link.finishUpstream()
        answer.succeed([[10, 0, 0, 1]])
        loop.run()
        XCTAssertEqual(a.opened.count, 0)
        let opened = try XCTUnwrap(b.opened.first?.1)
        XCTAssertEqual(opened.written.prefix(2), [[1], [2, 3]])
        XCTAssertTrue(opened.finished)
        XCTAssertEqual(sink.resumed, 1, "the client is read again")
    }

    /// UDP is routed per datagram: one link per outbound that takes a destination per datagram, one
    /// per destination for an outbound that does not (a vmess outbound's UDP request).
    func testUDPIsRoutedPerDatagram() throws {
        let direct = RecordingOutbound("direct"), proxy = RecordingOutbound("proxy", perPacket: false)
        let selector = OutboundSelector(outbounds: [direct, proxy]) { destination, _, _ in
            destination.port == 53 ? .outbound(0) : .outbound(1)
        }
        let link = selector.open(udp(.ipv4([1, 1, 1, 1]), 53), origin: RequestOrigin(), sink: sink, loop: loop, level: LevelPolicy())
        for (ip, port) in [(1, 53), (2, 53), (3, 443), (4, 443), (3, 443)] as [(UInt8, UInt16)] {
            link.writeDatagram(ByteBuffer(bytes: [ip]), to: udp(.ipv4([ip, ip, ip, ip]), port))
        }
        XCTAssertEqual(direct.opened.count, 1, "one link for every datagram to port 53")
        XCTAssertEqual(direct.opened[0].1.datagrams.map(\.1.port), [53, 53])
        XCTAssertEqual(proxy.opened.count, 2, "one link per destination through the proxy")
        XCTAssertEqual(proxy.opened.map { $0.1.datagrams.count }, [2, 1])
        link.close()
        XCTAssertTrue(direct.opened[0].1.closed && proxy.opened.allSatisfy { $0.1.closed })
    }
}
