import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// The tcp HTTP disguise's handlers on an EmbeddedChannel: the server (through InboundTransport, as the
/// worker builds it) with a stand-in protocol handler, and the client handler alone.
final class TCPHTTPHeaderHandlerTests: XCTestCase {
    /// Stand-in protocol handler: records what the transport hands it; `answer` writes back.
    static func stream(paths: [String] = ["/vmess"]) -> StreamSettings {
        var s = StreamSettings()
        var header = TCPHTTPHeaderSettings()
        header.request.paths = paths
        header.response.headers = [.init(name: "Server", values: ["nginx"])]
        s.tcpHeader = header
        return s
    }

    static let request = "GET /vmess HTTP/1.1\r\nHost: www.bing.com\r\nConnection: keep-alive\r\n\r\n"

    func makeServer(_ stream: StreamSettings = stream()) throws -> (EmbeddedChannel, StreamRecorder) {
        try makeInboundPipeline(try InboundTransport(stream: stream))
    }

    func outboundText(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let b = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: b) }
        return text
    }

    // MARK: server

    /// The VMess bytes behind the head, at every split point and one byte at a time: all of them, in
    /// order, and nothing of the head.
    func testServerKeepsBytesBehindTheHeadAtEverySplit() throws {
        let payload = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        let wire = Array(Self.request.utf8) + payload
        for split in Array(stride(from: 0, through: wire.count, by: 31)) + [Self.request.utf8.count, Self.request.utf8.count - 1] {
            let (channel, recorder) = try makeServer()
            try feed(channel, wire[..<split])
            try feed(channel, wire[split...])
            XCTAssertTrue(recorder.bytes == payload, "split \(split): \(recorder.bytes.count) bytes delivered")
            XCTAssertEqual(recorder.activations, 1)
            XCTAssertEqual(try outboundText(channel), "", "answered before the protocol wrote")
        }
        let (channel, recorder) = try makeServer()
        for index in wire.indices { try feed(channel, wire[index...index]) }
        XCTAssertTrue(recorder.bytes == payload, "one byte at a time: \(recorder.bytes.count) bytes delivered")
    }

    /// The response head goes out once, right before the protocol's first bytes.
    func testServerWritesTheResponseHeadOnceBeforeTheFirstBytes() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Array((Self.request + "REQ").utf8)[...])
        recorder.answer("RESPONSE-1")
        let first = try outboundText(channel)
        XCTAssertTrue(first.hasPrefix("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: "), first)
        XCTAssertTrue(first.hasSuffix(" GMT\r\n\r\nRESPONSE-1"), first)
        recorder.answer("RESPONSE-2")
        XCTAssertEqual(try outboundText(channel), "RESPONSE-2")
        try feed(channel, Array("MORE".utf8)[...])
        XCTAssertEqual(String(decoding: recorder.bytes, as: UTF8.self), "REQMORE")
        // Done with both heads: the handler has left the pipeline.
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: TCPHTTPHeaderServerHandler.self))
    }

    func testServerRefusesAWrongPathWith404AndNoStream() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Array("GET /other HTTP/1.1\r\nHost: x\r\n\r\nVMESS".utf8)[...])
        let answer = try outboundText(channel)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 404 Not Found\r\nConnection: close\r\nCache-Control: private\r\nContent-Length: 0\r\nDate: "), answer)
        XCTAssertFalse(channel.isActive, "not closed after the 404")
        XCTAssertEqual(recorder.bytes, [])
    }

    func testServerRefusesBadHeadsWith400() throws {
        let cases: [(String, [UInt8])] = [
            ("not HTTP", [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, 13, 10]),
            ("bad version", Array("GET /vmess HTTP/x\r\n\r\n".utf8)),
            ("bad header line", Array("GET /vmess HTTP/1.1\r\nno colon\r\n\r\n".utf8)),
            ("too long", Array("GET /vmess HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: TCPHTTPHeader.maximumHead)),
        ]
        for (label, bytes) in cases {
            let (channel, recorder) = try makeServer()
            try feed(channel, bytes[...])
            let answer = try outboundText(channel)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(label): \(answer)")
            XCTAssertFalse(channel.isActive, "\(label): not closed")
            XCTAssertEqual(recorder.bytes, [], label)
        }
    }

    /// A head within the bound is accepted even when the bytes behind it take the read past the bound.
    func testServerHeadAtTheBoundWithPipelinedBytes() throws {
        let prefix = "GET /vmess HTTP/1.1\r\nX: "
        let filler = String(repeating: "a", count: TCPHTTPHeader.maximumHead - prefix.utf8.count - 4)
        let head = prefix + filler + "\r\n\r\n"
        XCTAssertEqual(head.utf8.count, TCPHTTPHeader.maximumHead)
        let payload = [UInt8](repeating: 7, count: 20000)
        let (channel, recorder) = try makeServer()
        try feed(channel, (Array(head.utf8) + payload)[...])
        XCTAssertEqual(recorder.bytes.count, payload.count)
        XCTAssertTrue(channel.isActive)
    }

    func testServerTimeoutAnswers400() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Array("GET /vmess HTTP/1.1\r\n".utf8)[...])
        channel.embeddedEventLoop.advanceTime(by: TCPHTTPHeaderServerHandler.handshakeTimeout - .milliseconds(1))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertTrue(try outboundText(channel).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.bytes, [])
    }

    func testServerHalfCloseInsideTheHeadAnswers400() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Array("GET /vmess HTTP/1.1\r\nHost".utf8)[...])
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.embeddedEventLoop.run()
        XCTAssertTrue(try outboundText(channel).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.bytes, [])
    }

    /// A good head followed by a stream the protocol rejects: closed by the protocol handler without a
    /// byte written, the client gets V2Ray's 400 rather than a bare close.
    func testServerCloseWithoutAnAnswerSends400() throws {
        let (channel, recorder) = try makeServer()
        try feed(channel, Array((Self.request + "garbage").utf8)[...])
        XCTAssertEqual(String(decoding: recorder.bytes, as: UTF8.self), "garbage")
        recorder.context?.close(promise: nil)
        channel.embeddedEventLoop.run()
        XCTAssertTrue(try outboundText(channel).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertFalse(channel.isActive)
    }

    // MARK: client

    func makeClient() throws -> (EmbeddedChannel, StreamRecorder) {
        var settings = TCPHTTPHeaderSettings()
        settings.request.paths = ["/p"]
        settings.request.headers = [.init(name: "Host", values: ["h"])]
        let recorder = StreamRecorder()
        let channel = EmbeddedChannel(handlers: [TCPHTTPHeaderClientHandler(header: TCPHTTPHeader(settings: settings)), recorder])
        addTeardownBlock { _ = try? channel.finish(acceptAlreadyClosed: true) }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, recorder)
    }

    func testClientSendsTheRequestHeadBeforeTheFirstWriteOnly() throws {
        let (channel, recorder) = try makeClient()
        recorder.answer("VMESS-1")
        recorder.answer("VMESS-2")
        XCTAssertEqual(try outboundText(channel), "GET /p HTTP/1.1\r\nHost: h\r\n\r\nVMESS-1VMESS-2")
    }

    func testClientStripsTheResponseHeadAtEverySplit() throws {
        let payload = (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 3) }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mpeg\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
        let wire = Array(head.utf8) + payload
        for split in Array(stride(from: 0, through: wire.count, by: 29)) + [head.utf8.count] {
            let (channel, recorder) = try makeClient()
            try feed(channel, wire[..<split])
            try feed(channel, wire[split...])
            XCTAssertTrue(recorder.bytes == payload, "split \(split): \(recorder.bytes.count) bytes")
        }
    }

    /// Any status is taken (V2Ray's client does not look), but not something that is not HTTP.
    func testClientTakesAnyStatusButOnlyHTTP() throws {
        let (ok, okRecorder) = try makeClient()
        try feed(ok, Array("HTTP/1.1 404 Not Found\r\n\r\nX".utf8)[...])
        XCTAssertEqual(okRecorder.bytes, Array("X".utf8))
        XCTAssertTrue(ok.isActive)

        let (bad, badRecorder) = try makeClient()
        XCTAssertThrowsError(try feed(bad, Array("SSH-2.0-x\r\n\r\nX".utf8)[...]))
        XCTAssertFalse(bad.isActive)
        XCTAssertEqual(badRecorder.bytes, [])

        let (long, longRecorder) = try makeClient()
        XCTAssertThrowsError(try feed(long, ([UInt8]("HTTP/1.1 200 OK\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: TCPHTTPHeader.maximumHead))[...]))
        XCTAssertFalse(long.isActive)
        XCTAssertEqual(longRecorder.bytes, [])
    }
}
