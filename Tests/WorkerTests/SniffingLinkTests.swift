import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// An inbound with `sniffing`: the first bytes decide the route and (for destOverride protocols) the
/// destination, then reach the chosen outbound unchanged and in order. The routing decisions are the
/// real Router's; the outbounds record what they were asked to open (the real binaries are in the
/// end-to-end SniffingTests).
final class SniffingLinkTests: XCTestCase {
    typealias RecordingOutbound = OutboundSelectorTests.RecordingOutbound

    let loop = EmbeddedEventLoop()
    let sink = OutboundSelectorTests.NullSink()
    let direct = RecordingOutbound("direct"), special = RecordingOutbound("special"), block = RecordingOutbound("block")

    /// Rules: sniffed name special.example → special; BitTorrent → block; the rest → direct.
    func selector() throws -> OutboundSelector {
        var byName = RoutingRule(target: .outbound("special"), jsonPath: "rules[0]")
        byName.domains = DomainSet()
        byName.domains?.full = ["special.example"]
        var byProtocol = RoutingRule(target: .outbound("block"), jsonPath: "rules[1]")
        byProtocol.protocols = ["bittorrent"]
        let router = try Router(RoutingConfig(rules: [byName, byProtocol]), outboundTags: ["direct", "special", "block"])
        return OutboundSelector(outbounds: [direct, special, block], decide: OutboundSelector.decide(with: router))
    }

    func origin(_ config: SniffingConfig = SniffingConfig(destOverride: ["http", "tls"])) throws -> RequestOrigin {
        RequestOrigin(inboundTag: "in", sniffing: try SniffingPolicy(config))
    }

    let target = Destination(network: .tcp, address: .ipv4([93, 184, 216, 34]), port: 443)

    func clientHello(_ name: String) -> [UInt8] { TLSServerNameSniffer.minimalClientHello(serverName: name) }

    func write(_ link: UpstreamLink, _ bytes: some Sequence<UInt8>) {
        link.write(ByteBuffer(bytes: Array(bytes)))
    }

    func testAClientHelloSplitOverReadsIsWaitedForThenOverridesAndRoutes() throws {
        let link = try selector().open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        let hello = clientHello("Special.Example") + Array("application data".utf8)
        write(link, hello[..<3])
        write(link, hello[3..<40])
        XCTAssertTrue(direct.opened.isEmpty && special.opened.isEmpty, "decided before the ClientHello was whole")
        XCTAssertTrue(link.isConnecting)
        write(link, hello[40...])
        XCTAssertEqual(special.opened.count, 1)
        XCTAssertEqual(special.opened[0].0, Destination(network: .tcp, address: .domain("special.example"), port: 443))
        XCTAssertEqual(special.opened[0].1.written.flatMap { $0 }, hello, "the held bytes must arrive whole and in order")
        write(link, [1, 2, 3])
        XCTAssertEqual(special.opened[0].1.written.last, [1, 2, 3])
        XCTAssertTrue(direct.opened.isEmpty)
    }

    func testRouteOnlyRoutesByTheNameButKeepsTheAddress() throws {
        let link = try selector().open(target, origin: try origin(SniffingConfig(destOverride: ["tls"], routeOnly: true)),
                                       sink: sink, loop: loop, level: LevelPolicy())
        write(link, clientHello("special.example"))
        XCTAssertEqual(special.opened.map(\.0), [target])
    }

    func testTheProtocolRoutesWithoutAName() throws {
        let link = try selector().open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        write(link, [19] + Array("BitTorrent protocol".utf8) + [UInt8](repeating: 0, count: 48))
        XCTAssertEqual(block.opened.map(\.0), [target])
    }

    func testOtherProtocolsAreDecidedAtOnceAndUnchanged() throws {
        let link = try selector().open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        write(link, Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
        XCTAssertEqual(direct.opened.map(\.0), [target])
        XCTAssertEqual(direct.opened[0].1.written, [Array("SSH-2.0-OpenSSH_9.2\r\n".utf8)])
    }

    func testSilentClientsGoOnAfterTheDeadlineAndHalfClosesDecide() throws {
        let selector = try selector()
        let silent = selector.open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        loop.advanceTime(by: SniffingLink.deadline - .milliseconds(1))
        XCTAssertTrue(direct.opened.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        withExtendedLifetime(silent) {}
        XCTAssertEqual(direct.opened.map(\.0), [target])
        XCTAssertEqual(sink.resumed, 1, "the inbound must be told to read again")

        // An HTTP head cut short by the client's half-close: decided with what came (no Host yet).
        let link = selector.open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        write(link, Array("GET / HTTP/1.1\r\nAccept: */*\r\n".utf8))
        XCTAssertEqual(direct.opened.count, 1)
        link.finishUpstream()
        XCTAssertEqual(direct.opened.count, 2)
        XCTAssertTrue(direct.opened[1].1.finished)
        XCTAssertEqual(direct.opened[1].0, target)
    }

    func testAHeadThatNeverEndsIsGivenUpAfterTheWindowAndAClosedLinkOpensNothing() throws {
        let selector = try selector()
        let link = selector.open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        var sent = Array("GET / HTTP/1.1\r\n".utf8)
        write(link, sent)
        let pad = Array("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".utf8)
        while direct.opened.isEmpty && sent.count < 1 << 20 {
            write(link, pad)
            sent += pad
        }
        XCTAssertGreaterThanOrEqual(sent.count, ContentSniffer.window)
        XCTAssertLessThan(sent.count, ContentSniffer.window + pad.count, "sniffing must stop at its window")
        XCTAssertEqual(direct.opened.map(\.0), [target])
        XCTAssertEqual(direct.opened[0].1.written.flatMap { $0 }, sent)

        let closed = selector.open(target, origin: try origin(), sink: sink, loop: loop, level: LevelPolicy())
        write(closed, Array("GET / HT".utf8))
        closed.close()
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(direct.opened.count, 1)
        XCTAssertTrue(special.opened.isEmpty && block.opened.isEmpty)
    }
}
