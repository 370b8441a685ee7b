import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import XCTest
@testable import Shared
@testable import Worker

/// The server side of ws and httpupgrade on an EmbeddedChannel, with a stand-in protocol handler that
/// records what the transport hands it.
final class TransportServerPipelineTests: XCTestCase {
    /// A server pipeline with StreamRecorder standing in for VMessServerHandler.
    func makeChannel(_ stream: StreamSettings) throws -> (EmbeddedChannel, StreamRecorder) {
        try makeInboundPipeline(try InboundTransport(stream: stream))
    }

    /// Everything written so far (NIO's frame encoder writes a frame's header and payload separately).
    func outboundBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while var b = try channel.readOutbound(as: ByteBuffer.self) { bytes += b.readBytes(length: b.readableBytes) ?? [] }
        return bytes
    }

    func outboundText(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: b) }
        return text
    }

    static func httpUpgrade() -> StreamSettings {
        var s = StreamSettings()
        s.network = .httpupgrade
        var hu = HTTPUpgradeSettings()
        hu.path = "/download"
        hu.host = "proxy.example.net"
        s.httpUpgrade = hu
        return s
    }

    static func webSocket(maxEarlyData: Int = 0) -> StreamSettings {
        var s = StreamSettings()
        s.network = .ws
        var ws = WebSocketSettings()
        ws.path = "/ws"
        ws.maxEarlyData = maxEarlyData
        s.ws = ws
        return s
    }

    static let huRequest = "GET /download HTTP/1.1\r\nHost: proxy.example.net\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    static let wsRequest = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

    // MARK: httpupgrade

    /// Xray's pipelining client: the payload right behind the head, fed at every split point and one
    /// byte at a time, reaches the protocol handler whole and first.
    func testHTTPUpgradeKeepsBytesSentBehindTheRequestHead() throws {
        let payload = Array((0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let wire = Array(Self.huRequest.utf8) + payload
        for split in stride(from: 0, through: wire.count, by: 97) + [Self.huRequest.utf8.count, Self.huRequest.utf8.count - 1] {
            let (channel, recorder) = try makeChannel(Self.httpUpgrade())
            try feed(channel, wire[..<split])
            try feed(channel, wire[split...])
            XCTAssertTrue(recorder.bytes == payload, "split \(split): \(recorder.bytes.count) bytes delivered")
            XCTAssertEqual(recorder.activations, 1)
            XCTAssertEqual(try outboundText(channel), "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            _ = try? channel.finish()
        }
        let (channel, recorder) = try makeChannel(Self.httpUpgrade())
        for index in wire.indices { try feed(channel, wire[index...index]) }
        XCTAssertTrue(recorder.bytes == payload, "one byte at a time: \(recorder.bytes.count) bytes delivered")
        _ = try? channel.finish()
    }

    /// A pipelining client that half-closes right behind its payload: the FIN must not overtake the
    /// bytes (NIO's HTTP decoder would drop them in that case, hence our own head reader).
    func testHTTPUpgradePipelinedPayloadThenImmediateHalfClose() throws {
        let (channel, recorder) = try makeChannel(Self.httpUpgrade())
        try channel.writeInbound(channel.allocator.buffer(string: Self.huRequest + "PAYLOAD"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(String(decoding: recorder.bytes, as: UTF8.self), "PAYLOAD")
        XCTAssertTrue(recorder.inputClosed)
    }

    func testHalfCloseBeforeTheHeadIsCompleteClosesWithoutAnswer() throws {
        let (channel, recorder) = try makeChannel(Self.httpUpgrade())
        try channel.writeInbound(channel.allocator.buffer(string: "GET /download HTTP/1.1\r\n"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try outboundText(channel), "")
        XCTAssertEqual(recorder.activations, 0)
    }

    func testHTTPUpgradeWrongPathGets404AndNoProtocol() throws {
        let (channel, recorder) = try makeChannel(Self.httpUpgrade())
        try channel.writeInbound(channel.allocator.buffer(string: Self.huRequest.replacingOccurrences(of: "/download", with: "/x") + "VMESS"))
        XCTAssertTrue(try outboundText(channel).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        XCTAssertEqual(recorder.bytes, [])
        XCTAssertEqual(recorder.activations, 0)
        XCTAssertFalse(channel.isActive)
    }

    func testOversizedRequestHeadIsRefused() throws {
        let (channel, recorder) = try makeChannel(Self.httpUpgrade())
        let big = "GET /download HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 20_000) + "\r\n\r\n"
        _ = try? channel.writeInbound(channel.allocator.buffer(string: big))
        XCTAssertTrue(try outboundText(channel).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertEqual(recorder.activations, 0)
        XCTAssertFalse(channel.isActive)
    }

    func testSilentClientIsClosedAfterFourSeconds() throws {
        let (channel, _) = try makeChannel(Self.httpUpgrade())
        try channel.writeInbound(channel.allocator.buffer(string: "GET /down"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(3900))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(try outboundText(channel), "")
    }

    // MARK: WebSocket

    func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, masked: Bool = true) -> ByteBuffer {
        var out = ByteBuffer()
        out.writeInteger((fin ? 0x80 : 0) | UInt8(webSocketOpcode: opcode))
        let key: [UInt8] = masked ? [0x12, 0x34, 0x56, 0x78] : []
        if bytes.count < 126 {
            out.writeInteger(UInt8(bytes.count) | (masked ? 0x80 : 0))
        } else {
            out.writeInteger(UInt8(126) | (masked ? 0x80 : 0))
            out.writeInteger(UInt16(bytes.count))
        }
        out.writeBytes(key)
        out.writeBytes(bytes.enumerated().map { masked ? $0.element ^ key[$0.offset & 3] : $0.element })
        return out
    }

    func testWebSocketFramesBecomeAByteStreamAndBack() throws {
        let (channel, recorder) = try makeChannel(Self.webSocket())
        try channel.writeInbound(channel.allocator.buffer(string: Self.wsRequest + "\r\n"))
        channel.embeddedEventLoop.run()
        let response = try outboundText(channel)
        XCTAssertTrue(response.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), response)
        XCTAssertTrue(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"))
        XCTAssertEqual(recorder.activations, 1)

        // A fragmented message (binary + continuation, a ping in between) and a text message.
        try channel.writeInbound(frame(.binary, [1, 2, 3], fin: false))
        try channel.writeInbound(frame(.ping, [9, 9]))
        try channel.writeInbound(frame(.continuation, Array(repeating: 4, count: 300)))
        try channel.writeInbound(frame(.text, [5]))
        XCTAssertEqual(recorder.bytes, [1, 2, 3] + Array(repeating: 4, count: 300) + [5])
        // The pong, unmasked (server).
        XCTAssertEqual(try outboundBytes(channel), [0x8A, 0x02, 9, 9])

        // Writes from the protocol handler: one unmasked binary frame each.
        try channel.writeAndFlush(channel.allocator.buffer(bytes: [7, 8])).wait()
        XCTAssertEqual(try outboundBytes(channel), [0x82, 0x02, 7, 8])

        // Close from the client: the protocol sees a half-close; its close sends our Close (1000).
        try channel.writeInbound(frame(.connectionClose, [0x03, 0xE8]))
        XCTAssertTrue(recorder.inputClosed)
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try outboundBytes(channel), [0x88, 0x02, 0x03, 0xE8])
    }

    func testWebSocketEarlyDataComesFirstAndIsEchoed() throws {
        let (channel, recorder) = try makeChannel(Self.webSocket())
        let early: [UInt8] = Array(0..<100)
        let text = EarlyData.encodeRaw(early)
        try channel.writeInbound(channel.allocator.buffer(string: Self.wsRequest + "Sec-WebSocket-Protocol: \(text)\r\n\r\n"))
        channel.embeddedEventLoop.run()
        try channel.writeInbound(frame(.binary, [200, 201]))
        XCTAssertEqual(recorder.bytes, early + [200, 201])
        XCTAssertTrue(try outboundText(channel).contains("\r\nSec-WebSocket-Protocol: \(text)\r\n"))
    }

    /// Frames sent right behind the request head (same read) are not lost either.
    func testWebSocketPathEarlyDataAndFramesInTheSameRead() throws {
        let (channel, recorder) = try makeChannel(Self.webSocket(maxEarlyData: 2048))
        var wire = channel.allocator.buffer(string: Self.wsRequest.replacingOccurrences(of: "GET /ws ", with: "GET /ws\(EarlyData.encodeRaw([1, 2, 3])) ") + "\r\n")
        var f = frame(.binary, [4, 5])
        wire.writeBuffer(&f)
        try channel.writeInbound(wire)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(recorder.bytes, [1, 2, 3, 4, 5])
    }

    func testOversizedWebSocketFrameClosesTheConnection() throws {
        let (channel, _) = try makeChannel(Self.webSocket())
        try channel.writeInbound(channel.allocator.buffer(string: Self.wsRequest + "\r\n"))
        channel.embeddedEventLoop.run()
        _ = try outboundText(channel)
        var header = ByteBuffer()
        header.writeInteger(UInt8(0x82))
        header.writeInteger(UInt8(0x80 | 127))
        header.writeInteger(UInt64(ServerUpgradeHandler.maximumFrameSize + 1))
        header.writeBytes([0, 0, 0, 0])
        XCTAssertThrowsError(try channel.writeInbound(header))
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }
}
