import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// The inbound handler on an EmbeddedChannel: anti-probing (no byte ever answered, drain then close),
/// the handshake deadline, and a full accepted request against a blackhole outbound.
final class VMessServerHandlerTests: XCTestCase {
    let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func makeChannel(outbound: OutboundSettings = .freedom(FreedomSettings())) throws -> (EmbeddedChannel, InboundContext) {
        let settings = VMessInboundSettings(users: [VMessUser(id: uuid)])
        let inbound = InboundConfig(port: 1, settings: .vmess(settings), jsonPath: "inbounds[0]")
        let counters = WorkerCounters()
        let ctx = try InboundContext(index: 0, config: inbound, settings: settings, policy: PolicyConfig(),
                                     outbounds: OutboundSelector(outbounds: [OutboundFactory.make(OutboundConfig(settings: outbound, jsonPath: "outbounds[0]"),
                                                                                                  counters: counters, logger: Logger(label: "test"))]),
                                     replay: GenerationalReplayFilter(), counters: counters,
                                     logger: Logger(label: "test"))
        let channel = EmbeddedChannel(handler: VMessServerHandler(inbound: ctx))
        try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, ctx)
    }

    /// Regression (issue 7 soak: 6.2 kB kept per closed connection): a closed connection's handlers
    /// are freed. A handler that keeps its ChannelHandlerContext past removal forms a cycle with it
    /// (the context holds the handler, the pipeline and the channel).
    func testClosedConnectionsAreFreed() throws {
        weak var vmess: VMessServerHandler?
        weak var client: ClientInboundHandler<SOCKSHandshake>?
        try {
            let (channel, _) = try makeChannel()
            vmess = try channel.pipeline.syncOperations.handler(type: VMessServerHandler.self)
            try channel.writeInbound(channel.allocator.buffer(bytes: SecureRandom.bytes(20)))
            _ = try channel.finish(acceptAlreadyClosed: true)
        }()
        try {
            let inbound = InboundConfig(port: 1, settings: .socks(SocksInboundSettings()), jsonPath: "inbounds[0]")
            let counters = WorkerCounters()
            let ctx = try ClientInboundContext(config: inbound, userLevel: 0, policy: PolicyConfig(),
                                           outbounds: OutboundSelector(outbounds: [BlackholeOutbound(tag: nil, settings: BlackholeSettings())]),
                                           counters: counters, logger: Logger(label: "test"), accessLog: nil)
            let handler = ClientInboundHandler(inbound: ctx, handshake: SOCKSHandshake(settings: SocksInboundSettings()))
            client = handler
            let channel = EmbeddedChannel(handler: handler)
            try channel.connect(to: .init(ipAddress: "127.0.0.1", port: 9)).wait()
            try channel.writeInbound(channel.allocator.buffer(bytes: [5, 1, 0]))
            _ = try channel.finish(acceptAlreadyClosed: true)
        }()
        XCTAssertNil(vmess, "the VMess handler of a closed connection is still alive")
        XCTAssertNil(client, "the client inbound handler of a closed connection is still alive")
    }

    func testGarbageIsNeverAnsweredAndDrainedThenClosed() throws {
        let (channel, ctx) = try makeChannel()
        let total = 16 + 38 + ctx.users.drainBase + ctx.users.drainRandomMax
        var sent = 0
        while sent < total + 100 {
            let piece = SecureRandom.bytes(37)
            XCTAssertTrue(channel.isActive, "closed early after \(sent) bytes")
            try channel.writeInbound(channel.allocator.buffer(bytes: piece))
            sent += piece.count
            XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "answered a prober")
            if !channel.isActive { break }
        }
        XCTAssertFalse(channel.isActive, "still open after \(sent) bytes")
        XCTAssertGreaterThanOrEqual(sent, 16 + 38 + ctx.users.drainBase)
        XCTAssertEqual(ctx.counters.rejected["unknown_user"], 1)
    }

    func testSilentPeerIsClosedAtTheHandshakeDeadline() throws {
        let (channel, _) = try makeChannel()
        try channel.writeInbound(channel.allocator.buffer(bytes: SecureRandom.bytes(20)))
        (channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive)
        (channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    /// A slowloris (one byte a second, forever) is closed at the handshake deadline: bytes do not
    /// extend it.
    func testSlowlorisIsClosedAtTheHandshakeDeadline() throws {
        let (channel, _) = try makeChannel()
        let loop = channel.eventLoop as! EmbeddedEventLoop
        var seconds = 0
        while channel.isActive && seconds < 120 {
            try channel.writeInbound(channel.allocator.buffer(bytes: [UInt8.random(in: 0...255)]))
            loop.advanceTime(by: .seconds(1))
            seconds += 1
        }
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(seconds, 60, "closed at the 60 s default deadline")
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    func testAcceptedRequestToHTTPBlackholeGetsA403ThroughTheTunnel() throws {
        var bh = BlackholeSettings()
        bh.httpResponse = true
        let (channel, _) = try makeChannel(outbound: .blackhole(bh))
        let id = UserID(text: uuid)!
        let request = RequestHeader(requestIV: SecureRandom.bytes(16), requestKey: SecureRandom.bytes(16), responseAuth: 0x77,
                                    options: RequestOptions(rawValue: 0x0D), security: .chacha20Poly1305, command: .tcp,
                                    port: 80, address: .domain("example.com"))
        let header = try AEADHeader.seal(request, cmdKey: id.cmdKey, time: Int64(Date().timeIntervalSince1970))
        // Header and first chunk in one write, then the rest one byte at a time.
        let enc = try BodyEncoder(.request(request))
        var body = channel.allocator.buffer(string: "GET / HTTP/1.1\r\n\r\n")
        let chunk = try enc.encode(&body, allocator: channel.allocator).bytes
        let wire = header + chunk
        try channel.writeInbound(channel.allocator.buffer(bytes: wire[0..<50]))
        for b in wire[50...] { try channel.writeInbound(channel.allocator.buffer(bytes: [b])) }

        (channel.eventLoop as! EmbeddedEventLoop).run()
        var response: [UInt8] = []
        while let out = try channel.readOutbound(as: ByteBuffer.self) { response += out.bytes }
        let keys = ResponseHeader.bodyKeys(request: request, legacy: false)
        XCTAssertEqual(ResponseHeader.openAEADLength(Array(response[0..<18]), keys: keys), 4)
        XCTAssertEqual(ResponseHeader.openAEADHeader(Array(response[18..<38]), keys: keys), [0x77, 0, 0, 0])
        let dec = try BodyDecoder(.response(request, keys: keys))
        var rest = channel.allocator.buffer(bytes: response[38...])
        var text: [UInt8] = []
        let ended = try dec.decode(&rest) { text += $0.bytes }
        XCTAssertTrue(ended)
        XCTAssertTrue(String(decoding: text, as: UTF8.self).hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
}

import Foundation
