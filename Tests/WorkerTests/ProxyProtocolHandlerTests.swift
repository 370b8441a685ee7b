import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// ProxyProtocolHandler on an EmbeddedChannel, installed by InboundTransport as the worker does: the
/// header is consumed and never passed on, the bytes behind it are (at every split), the carried
/// address is what `Channel.clientAddress` answers, and a bad, oversized or late header closes the
/// connection with nothing passed on.
final class ProxyProtocolHandlerTests: XCTestCase {
    static let peer = try! NIOCore.SocketAddress(ipAddress: "127.0.0.1", port: 40000)
    static let v1 = Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000 443\r\n".utf8)
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// 198.51.100.7:51000 → 203.0.113.1:443
    static let v4Addresses: [UInt8] = [198, 51, 100, 7, 203, 0, 113, 1, 0xC7, 0x38, 0x01, 0xBB]
    static func v2Header(command: UInt8 = 0x21, family: UInt8, body: [UInt8]) -> [UInt8] {
        signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }
    static let v2 = v2Header(family: 0x11, body: v4Addresses + [0x04, 0x00, 0x01, 0x00])
    static let payload = Array("vmess request bytes".utf8)

    var counters = WorkerCounters()
    var claimed: [NIOCore.SocketAddress?] = []
    var admit = true

    func makeServer(_ base: StreamSettings = StreamSettings()) throws -> (EmbeddedChannel, StreamRecorder) {
        var stream = base
        stream.acceptProxyProtocol = true
        return try makeInboundPipeline(try InboundTransport(stream: stream, counters: counters), peer: Self.peer,
                                       claimSource: { [unowned self] in claimed.append($0); return admit })
    }

    func testHeaderIsConsumedAndBytesBehindItPassAtEverySplit() throws {
        for header in [Self.v1, Self.v2] {
            let stream = header + Self.payload
            for cut in 0...stream.count {
                claimed = []
                let (channel, recorder) = try makeServer()
                try feed(channel, stream[..<cut])
                try feed(channel, stream[cut...])
                XCTAssertEqual(recorder.bytes, Self.payload, "cut \(cut)")
                let client = try NIOCore.SocketAddress(ipAddress: "198.51.100.7", port: 51000)
                XCTAssertEqual(recorder.clientAtFirstRead, client, "cut \(cut)")
                XCTAssertEqual(channel.clientAddress, client)
                XCTAssertEqual(claimed, [client], "the source is claimed once")
                XCTAssertTrue(channel.isActive)
            }
        }
    }

    /// dokodemo-door dials at activation: the handlers after this one must not see the connection
    /// before its client is known, nor at all when its header is bad.
    func testActivationWaitsForTheHeader() throws {
        let (channel, recorder) = try makeServer()
        XCTAssertEqual(recorder.activations, 0)
        try feed(channel, Self.v1[..<20])
        XCTAssertEqual(recorder.activations, 0)
        try feed(channel, Self.v1[20...])
        XCTAssertEqual(recorder.activations, 1)
        try channel.close().wait()
        XCTAssertEqual(recorder.deactivations, 1)

        let (bad, badRecorder) = try makeServer()
        try feed(bad, Array("GET / HTTP/1.1\r\n".utf8)[...])
        XCTAssertFalse(bad.isActive)
        XCTAssertEqual(badRecorder.activations, 0)
        XCTAssertEqual(badRecorder.deactivations, 0)
    }

    /// httpupgrade behind a balancer: header, request head and payload in any reads.
    func testHTTPUpgradeAfterTheHeader() throws {
        var stream = StreamSettings()
        stream.network = .httpupgrade
        var upgrade = HTTPUpgradeSettings()
        upgrade.path = "/download"
        stream.httpUpgrade = upgrade
        let request = Array("GET /download HTTP/1.1\r\nHost: example.net\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".utf8)
        let wire = Self.v2 + request + Self.payload
        for cut in stride(from: 0, through: wire.count, by: 7) {
            let (channel, recorder) = try makeServer(stream)
            try feed(channel, wire[..<cut])
            try feed(channel, wire[cut...])
            XCTAssertEqual(recorder.bytes, Self.payload, "cut \(cut)")
            XCTAssertEqual(recorder.clientAtFirstRead, try NIOCore.SocketAddress(ipAddress: "198.51.100.7", port: 51000))
            var text = ""
            while let b = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: b) }
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 101 "), text)
        }
    }

    func testHalfCloseBeforeTheHeaderEndsTheConnection() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Self.v1[..<10])
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.activations, 0)
        XCTAssertEqual(recorder.bytes, [])
    }

    func testOneByteAtATime() throws {
        let (channel, recorder) = try makeServer()
        for i in 0..<(Self.v2.count + Self.payload.count) {
            try feed(channel, (Self.v2 + Self.payload)[i...i])
        }
        XCTAssertEqual(recorder.bytes, Self.payload)
    }

    func testLocalAndUnknownMeanThePeer() throws {
        for header in [Self.v2Header(command: 0x20, family: 0x00, body: []), Array("PROXY UNKNOWN\r\n".utf8)] {
            claimed = []
            let (channel, recorder) = try makeServer()
            try feed(channel, (header + Self.payload)[...])
            XCTAssertEqual(recorder.bytes, Self.payload)
            XCTAssertEqual(recorder.clientAtFirstRead, Self.peer)
            XCTAssertEqual(claimed, [nil])
        }
    }

    func testBadHeadersCloseWithNothingPassedOn() throws {
        for bad in [Array("GET / HTTP/1.1\r\n\r\n".utf8),
                    Array("PROXY TCP4 198.51.100.7 203.0.113.1 51000 99999\r\n".utf8),
                    Self.v2Header(command: 0x23, family: 0x11, body: Self.v4Addresses),
                    Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: 0x41, count: 200)] {
            let (channel, recorder) = try makeServer()
            try feed(channel, (bad + Self.payload)[...])
            XCTAssertFalse(channel.isActive, "\(bad.prefix(20))")
            XCTAssertEqual(recorder.bytes, [])
        }
        XCTAssertEqual(counters.rejected["proxy_no_signature"], 1)
        XCTAssertEqual(counters.rejected["proxy_v1_malformed"], 1)
        XCTAssertEqual(counters.rejected["proxy_v2_malformed"], 1)
        XCTAssertEqual(counters.rejected["proxy_too_long"], 1)
        XCTAssertEqual(claimed, [])
    }

    func testOversizedV2LengthClosesBeforeTheBodyArrives() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, (Self.signature + [0x21, 0x11, 0xFF, 0xFF])[...])
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.bytes, [])
    }

    func testSilentOrSlowPeerIsClosedAtTheDeadline() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Self.v1[..<10])
        channel.embeddedEventLoop.advanceTime(by: ProxyProtocolHandler.deadline - .milliseconds(1))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.bytes, [])
        XCTAssertEqual(counters.rejected["proxy_timeout"], 1)
    }

    func testDeadlineDoesNotFireAfterTheHeader() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, (Self.v1 + Self.payload)[...])
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssertTrue(channel.isActive)
        XCTAssertEqual(recorder.bytes, Self.payload)
    }

    func testRefusedSourceClosesTheConnection() throws {
        admit = false
        let (channel, recorder) = try makeServer()
        try feed(channel, (Self.v1 + Self.payload)[...])
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.bytes, [])
    }

    func testWithoutTheSettingNothingIsRead() throws {
        let (channel, recorder) = try makeInboundPipeline(try InboundTransport(stream: StreamSettings()), peer: Self.peer)
        try feed(channel, Self.v1[...])
        XCTAssertEqual(recorder.bytes, Self.v1, "a PROXY line is just bytes to an inbound without the setting")
        XCTAssertEqual(channel.clientAddress, Self.peer)
    }
}

/// ConnectionTracker with a PROXY-protocol inbound: admitted without a source at accept, then limited
/// by the client address the header carried.
final class ProxyProtocolSourceLimitTests: XCTestCase {
    func testClaimLimitsByTheCarriedSource() throws {
        var limits = ClientLimits()
        limits.connectionsPerSource = 2
        let tracker = ConnectionTracker(limits: limits)
        let client = try NIOCore.SocketAddress(ipAddress: "198.51.100.7", port: 1)
        var channels: [EmbeddedChannel] = []
        defer { for c in channels { _ = try? c.finish(acceptAlreadyClosed: true) } }
        var results: [Bool] = []
        for _ in 0..<3 {
            let channel = EmbeddedChannel()
            channels.append(channel)
            let handler = try XCTUnwrap(tracker.admit(channel, bySource: false))
            try channel.pipeline.syncOperations.addHandler(handler)
            results.append(handler.claim(client))
        }
        XCTAssertEqual(results, [true, true, false])
        XCTAssertEqual(tracker.openConnections(from: client), 2)
        XCTAssertEqual(tracker.open, 3, "the third is counted until its channel closes")
        _ = try channels[0].finish(acceptAlreadyClosed: true)
        XCTAssertEqual(tracker.openConnections(from: client), 1)
    }
}
