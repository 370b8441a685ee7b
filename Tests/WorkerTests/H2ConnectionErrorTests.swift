import NIOCore
import NIOEmbedded
import NIOHTTP2
import XCTest
@testable import Shared
@testable import Worker

/// The server's HTTP/2 connection after a frame NIO takes as a connection error, as V2Ray 4.45's h2
/// client sends it (DATA with END_STREAM on a stream it has just reset): the other streams' frames
/// that came in the same read are still delivered, without waiting for more bytes from the client.
final class H2ConnectionErrorTests: XCTestCase {
    /// A recorder per stream, in the order the streams were accepted.
    final class Streams {
        var recorders: [StreamRecorder] = []
    }

    private func serverConnection() throws -> (EmbeddedChannel, Streams) {
        var settings = StreamSettings()
        settings.network = .h2
        settings.http = HTTPSettings()
        let transport = try InboundTransport(stream: settings)
        let channel = EmbeddedChannel()
        addTeardownBlock { _ = try? channel.finish(acceptAlreadyClosed: true) }
        let streams = Streams()
        try transport.configure(channel) { stream in
            let recorder = StreamRecorder()
            streams.recorders.append(recorder)
            try stream.pipeline.syncOperations.addHandler(recorder)
        }.wait()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, streams)
    }

    // MARK: a client's bytes, by hand (nothing in NIO would send a frame after its own reset)

    private func frame(_ type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), type, flags,
                UInt8(stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8),
                UInt8(truncatingIfNeeded: stream)] + payload
    }

    /// A request head as HPACK literals without indexing (no table, no Huffman).
    private func requestHeaders(stream: UInt32) -> [UInt8] {
        let fields = [(":method", "PUT"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]
        var block: [UInt8] = []
        for (name, value) in fields {
            block += [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
        }
        return frame(0x1, flags: 0x4, stream: stream, block)  // HEADERS, END_HEADERS
    }

    func testOtherStreamsGoOnAfterDataOnAResetStream() throws {
        let (channel, streams) = try serverConnection()
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(0x4, flags: 0, stream: 0, [])
        // Two streams open, as V2Ray's client opens them (its warm-up and first transfer).
        try feed(channel, ArraySlice(preface + requestHeaders(stream: 1) + requestHeaders(stream: 3)))
        XCTAssertEqual(streams.recorders.count, 2)
        // In one read: the client resets stream 1, sends its END_STREAM anyway, then stream 3's first
        // bytes (the order in Go's http2 debug log of the stalled benchmark run).
        let burst = frame(0x3, flags: 0, stream: 1, [0, 0, 0, 8])  // RST_STREAM CANCEL
            + frame(0x0, flags: 0x1, stream: 1, [])                // DATA END_STREAM on the reset stream
            + frame(0x0, flags: 0, stream: 3, Array("hello".utf8))
        // NIO reports the frame on the reset stream as a connection error (it reaches the end of the
        // pipeline, where EmbeddedChannel throws it; a real channel logs it).
        XCTAssertThrowsError(try feed(channel, ArraySlice(burst))) { XCTAssertTrue($0 is NIOHTTP2Errors.NoSuchStream, "\($0)") }
        channel.embeddedEventLoop.run()
        XCTAssertEqual(streams.recorders.last.map { String(decoding: $0.bytes, as: UTF8.self) }, "hello",
                       "stream 3's data waited for more bytes")
        // NIO answered with GOAWAY; the connection goes on for stream 3.
        XCTAssertTrue(channel.isActive)
        try feed(channel, ArraySlice(frame(0x0, flags: 0x1, stream: 3, Array(" world".utf8))))
        XCTAssertEqual(streams.recorders.last.map { String(decoding: $0.bytes, as: UTF8.self) }, "hello world")
        // With its last stream done it ends like any idle connection.
        streams.recorders.last?.context?.close(promise: nil)
        channel.embeddedEventLoop.run()
        channel.embeddedEventLoop.advanceTime(by: H2ConnectionWatcher.idleTimeout + .seconds(1))
        XCTAssertFalse(channel.isActive, "the connection outlived its idle timeout")
    }

    /// grpc-go sends a flow-control PING with nearly every burst of data it receives: a thousand in
    /// a moment must not look like a flood (NIO's default allowed 200 per 30 s).
    func testAClientsFlowControlPingsAreNoFlood() throws {
        let (channel, _) = try serverConnection()
        var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(0x4, flags: 0, stream: 0, [])
        for i in 0..<1000 { bytes += frame(0x6, flags: 0, stream: 0, (0..<8).map { UInt8(truncatingIfNeeded: i >> $0) }) }
        try feed(channel, ArraySlice(bytes))
        XCTAssertTrue(channel.isActive)
    }

    func testUnparsableFramingClosesTheConnection() throws {
        let (channel, _) = try serverConnection()
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + frame(0x4, flags: 0, stream: 0, [])
        // A SETTINGS frame whose length is not a multiple of 6: a framing error.
        XCTAssertThrowsError(try feed(channel, ArraySlice(preface + frame(0x4, flags: 0, stream: 0, [1, 2, 3]))))
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }
}
