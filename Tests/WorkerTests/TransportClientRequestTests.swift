import NIOCore
import NIOWebSocket
import XCTest
@testable import Shared
@testable import Worker

/// The pure parts of the ws/httpupgrade client: the request it sends and how it reads the answer.
final class TransportClientRequestTests: XCTestCase {
    static let response = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".utf8)

    /// Drip feed: the head is found at every split point, and the stream bytes behind it stay.
    func testResponseHeadAtEverySplitKeepsTheBytesBehindIt() throws {
        let stream: [UInt8] = [0x82, 0x03, 1, 2, 3]
        let wire = Self.response + stream
        for split in 0...wire.count {
            var buffer = Array(wire[..<split])
            var head = try UpgradeResponseHead.parse(&buffer)
            if head == nil {
                XCTAssertEqual(buffer.count, split, "consumed without a result at \(split)")
                buffer += wire[split...]
                head = try UpgradeResponseHead.parse(&buffer)
            } else {
                buffer += wire[split...]
            }
            XCTAssertEqual(head?.status, "101 Switching Protocols")
            XCTAssertEqual(head?.value("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
            XCTAssertEqual(buffer, stream, "split \(split)")
        }
    }

    func testResponseHeadIsBounded() {
        var buffer = Array("HTTP/1.1 101 Switching Protocols\r\nX: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 20_000)
        XCTAssertThrowsError(try UpgradeResponseHead.parse(&buffer))
        var garbage = Array("SSH-2.0-OpenSSH\r\n\r\n".utf8)
        XCTAssertThrowsError(try UpgradeResponseHead.parse(&garbage))
        var folded = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n folded\r\n\r\n".utf8)
        XCTAssertThrowsError(try UpgradeResponseHead.parse(&folded))
    }

    /// Request heads as the server reads them, one byte at a time with the scan position kept.
    func testRequestHeadDripFeed() throws {
        let wire = Array("GET /ws?a=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nUpgrade:  websocket \r\n\r\nSTREAM".utf8)
        var buffer: [UInt8] = []
        var scanned = 0
        var lines: HTTPHeadLines?
        for byte in wire {
            buffer.append(byte)
            if lines == nil { lines = try HTTPHeadLines.parse(&buffer, scanned: &scanned, limit: 1024) }
        }
        let head = try XCTUnwrap(lines).requestHead()
        XCTAssertEqual(head.method, .GET)
        XCTAssertEqual(head.uri, "/ws?a=1")
        XCTAssertEqual(head.headers["upgrade"], ["websocket"])
        XCTAssertEqual(head.headers["x-empty"], [""])
        XCTAssertEqual(buffer, Array("STREAM".utf8))
        var bad = Array("GET /ws HTTP/2\r\n\r\n".utf8)
        XCTAssertThrowsError(try HTTPHeadLines.parse(&bad, scanned: &scanned, limit: 1024)?.requestHead())
    }

    func testWebSocketRequestAndValidation() throws {
        var ws = WebSocketSettings()
        ws.path = "/ws"
        ws.headers = ["User-Agent": "vmessd"]
        let request = ClientUpgradeRequest(webSocket: ws, authority: "127.0.0.1:443", key: "dGhlIHNhbXBsZSBub25jZQ==")
        XCTAssertEqual(request.head(), "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:443\r\nUser-Agent: vmessd\r\nConnection: Upgrade\r\n"
            + "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertFalse(request.waitsForFirstWrite)
        var buffer = Self.response
        let head = try XCTUnwrap(try UpgradeResponseHead.parse(&buffer))
        XCTAssertNoThrow(try request.validate(head))
        let other = ClientUpgradeRequest(webSocket: ws, authority: "x", key: "AAAAAAAAAAAAAAAAAAAAAA==")
        XCTAssertThrowsError(try other.validate(head))
    }

    func testWebSocketEarlyDataPlacements() {
        var ws = WebSocketSettings()
        ws.path = "/ws"
        ws.host = "cdn.example"
        ws.maxEarlyData = 2048
        let path = ClientUpgradeRequest(webSocket: ws, authority: "x:1", key: "k")
        XCTAssertEqual(path.earlyData, .path(limit: 2048))
        XCTAssertTrue(path.head(early: [0xFB, 0xFF]).hasPrefix("GET /ws-_8 HTTP/1.1\r\nHost: cdn.example\r\n"))
        ws.earlyDataHeaderName = "Sec-WebSocket-Protocol"
        let header = ClientUpgradeRequest(webSocket: ws, authority: "x:1", key: "k")
        XCTAssertTrue(header.head(early: [0xFB, 0xFF]).contains("\r\nSec-WebSocket-Protocol: -_8\r\n"))
        // Xray's share-link syntax.
        var xray = WebSocketSettings()
        xray.path = "/ws?ed=1024&a=b"
        let query = ClientUpgradeRequest(webSocket: xray, authority: "x:1", key: "k")
        XCTAssertEqual(query.path, "/ws?a=b")
        XCTAssertEqual(query.earlyData, .header(name: "Sec-WebSocket-Protocol", limit: 1024))
    }

    func testHTTPUpgradeRequestAndValidation() throws {
        var hu = HTTPUpgradeSettings()
        hu.path = "/download"
        hu.host = "proxy.example.net"
        let request = ClientUpgradeRequest(httpUpgrade: hu, authority: "1.2.3.4:80")
        XCTAssertEqual(request.head(), "GET /download HTTP/1.1\r\nHost: proxy.example.net\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        var ok = Array("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\n\r\n".utf8)
        XCTAssertNoThrow(try request.validate(XCTUnwrap(UpgradeResponseHead.parse(&ok))))
        var wrongReason = Array("HTTP/1.1 101 Switching protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".utf8)
        XCTAssertThrowsError(try request.validate(XCTUnwrap(UpgradeResponseHead.parse(&wrongReason))))
        var notFound = Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8)
        XCTAssertThrowsError(try request.validate(XCTUnwrap(UpgradeResponseHead.parse(&notFound))))

        hu.maxEarlyData = 8
        hu.earlyDataHeaderName = "X-ED"
        let v2fly = ClientUpgradeRequest(httpUpgrade: hu, authority: "x")
        XCTAssertTrue(v2fly.head(early: [1, 2, 3, 4, 5]).contains("\r\nX-ED: AQIDBAU=\r\n"))
        hu.earlyDataHeaderName = nil
        XCTAssertEqual(ClientUpgradeRequest(httpUpgrade: hu, authority: "x").earlyData, .pipelined)
    }
}

/// The frame bytes this side writes (RFC 6455 §5.2) and the word-wise masking (§5.3).
final class TransportWebSocketFrameHeadTests: XCTestCase {
    func testMaskingMatchesTheBytewiseDefinitionAtEveryLength() {
        let key = WebSocketMaskingKey([0x37, 0xFA, 0x21, 0x3D])!
        for n in 0..<70 {
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var out = ByteBuffer()
            WebSocketFrameHead.appendMasked(ByteBuffer(bytes: payload), key: key, to: &out)
            let expected = payload.enumerated().map { $0.element ^ Array(key)[$0.offset % 4] }
            XCTAssertEqual(out.readableBytesView.map { $0 }, expected, "n=\(n)")
        }
        // RFC 6455 §5.7: a masked "Hello".
        var hello = ByteBuffer()
        WebSocketFrameHead.write(opcode: .text, length: 5, maskKey: key, into: &hello)
        WebSocketFrameHead.appendMasked(ByteBuffer(string: "Hello"), key: key, to: &hello)
        XCTAssertEqual(Array(hello.readableBytesView), [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    func testLengthEncodings() {
        for (length, header) in [(125, [0x82, 125]), (126, [0x82, 126, 0, 126]), (65535, [0x82, 126, 0xFF, 0xFF]),
                                 (65536, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])] as [(Int, [UInt8])] {
            var out = ByteBuffer()
            WebSocketFrameHead.write(opcode: .binary, length: length, maskKey: nil, into: &out)
            XCTAssertEqual(Array(out.readableBytesView), header, "length \(length)")
        }
    }
}
