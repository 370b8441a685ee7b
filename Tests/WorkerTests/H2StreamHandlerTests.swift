import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest
@testable import Shared
@testable import Worker

/// H2StreamHandler on an EmbeddedChannel standing in for one HTTP/2 stream: what a server answers to
/// request heads, the gun stream cut at every byte, END_STREAM both ways, hostile gun messages, and
/// the client's handling of a refusal.
final class H2StreamHandlerTests: XCTestCase {
    static let logger = Logger(label: "test")

    func serverStream(_ kind: H2RequestCheck.Kind) throws -> (EmbeddedChannel, StreamRecorder) {
        let channel = EmbeddedChannel()
        addTeardownBlock { _ = try? channel.finish(acceptAlreadyClosed: true) }
        let recorder = StreamRecorder()
        let handler = H2StreamHandler(role: .server(check: H2RequestCheck(kind), installProtocol: {
            try $0.pipeline.syncOperations.addHandler(recorder)
        }), logger: Self.logger)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, recorder)
    }

    static func gun(_ name: String = "svc") -> H2RequestCheck.Kind {
        var settings = GRPCSettings()
        settings.serviceName = name
        return .gun(settings)
    }

    static func grpcRequest(path: String = "/svc/Tun") -> HTTP2Frame.FramePayload {
        .headers(.init(headers: [":method": "POST", ":scheme": "http", ":path": path, ":authority": "x",
                                 "content-type": "application/grpc", "te": "trailers"]))
    }

    func data(_ bytes: [UInt8], end: Bool = false) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(bytes: bytes)), endStream: end))
    }

    func gunMessage(_ payload: [UInt8]) -> [UInt8] {
        var b = ByteBuffer()
        GunHunkEncoder.writePrefix(length: payload.count, into: &b)
        b.writeBytes(payload)
        return Array(b.readableBytesView)
    }

    /// The frames the handler wrote, in order.
    func written(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        var out: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { out.append(frame) }
        return out
    }

    func headers(_ frame: HTTP2Frame.FramePayload?) -> (HPACKHeaders, Bool)? {
        if case .headers(let h)? = frame { return (h.headers, h.endStream) }
        return nil
    }

    func bytes(_ frames: [HTTP2Frame.FramePayload]) -> [UInt8] {
        frames.flatMap { frame -> [UInt8] in
            if case .data(let d) = frame, case .byteBuffer(let b) = d.data { return Array(b.readableBytesView) }
            return []
        }
    }

    func testGunStreamAtEverySplitThenEndStreamBothWays() throws {
        let payloads: [[UInt8]] = [Array("first".utf8), (0..<700).map { UInt8(truncatingIfNeeded: $0) }, [], Array("last".utf8)]
        let wire = payloads.flatMap(gunMessage)
        for cut in 0...wire.count {
            let (channel, recorder) = try serverStream(Self.gun())
            try channel.writeInbound(Self.grpcRequest())
            XCTAssertEqual(recorder.activations, 1)
            try channel.writeInbound(data(Array(wire[..<cut])))
            try channel.writeInbound(data(Array(wire[cut...]), end: true))
            XCTAssertEqual(recorder.bytes, payloads.flatMap { $0 }, "cut at \(cut)")
            XCTAssertTrue(recorder.inputClosed, "cut at \(cut)")
            guard cut == 0 else { continue }
            let response = try written(channel)
            XCTAssertEqual(headers(response.first)?.0.first(name: ":status"), "200")
            XCTAssertEqual(headers(response.first)?.0.first(name: "content-type"), "application/grpc")
            // The protocol answers and ends its side: gun messages, then trailers with grpc-status 0.
            recorder.answer("pong")
            recorder.context?.close(mode: .output, promise: nil)
            let answer = try written(channel)
            XCTAssertEqual(bytes(answer), gunMessage(Array("pong".utf8)))
            XCTAssertEqual(headers(answer.last)?.0.first(name: "grpc-status"), "0")
            XCTAssertEqual(headers(answer.last)?.1, true)
        }
    }

    func testRefusedRequestsGetNoProtocolHandler() throws {
        let cases: [(H2RequestCheck.Kind, HTTP2Frame.FramePayload, String, String?)] = [
            (Self.gun(), Self.grpcRequest(path: "/other/Tun"), "200", "12"),
            (Self.gun(), .headers(.init(headers: [":method": "GET", ":scheme": "http", ":path": "/svc/Tun", ":authority": "x"])), "404", nil),
            (.http(HTTPSettings()), .headers(.init(headers: [":method": "PUT", ":scheme": "https", ":path": "/", ":authority": "other.test"])), "404", nil),
        ]
        for (kind, request, status, grpcStatus) in cases {
            let (channel, recorder) = try serverStream(kind)
            try channel.writeInbound(request)
            try channel.writeInbound(data(Array("VMESS?".utf8)))
            let response = try written(channel)
            XCTAssertEqual(headers(response.first)?.0.first(name: ":status"), status)
            XCTAssertEqual(headers(response.first)?.0.first(name: "grpc-status"), grpcStatus)
            XCTAssertEqual(headers(response.first)?.1, true, "a refusal ends the stream")
            XCTAssertEqual(recorder.activations, 0)
            XCTAssertTrue(recorder.bytes.isEmpty)
            XCTAssertFalse(channel.isActive, "refused stream closed")
        }
    }

    func testHostileGunMessagesResetTheStream() throws {
        let hostile: [[UInt8]] = [
            [1, 0, 0, 0, 3, 0x0A, 1, 0x41],  // compressed
            [0, 0xFF, 0xFF, 0xFF, 0xFF],  // 4 GiB message
            [0, 0, 0, 0, 3, 0x0A, 9, 0x41],  // field past its message
            [0, 0, 0, 0, 1, 0x0B],  // group wire type
        ]
        for wire in hostile {
            let (channel, recorder) = try serverStream(Self.gun())
            try channel.writeInbound(Self.grpcRequest())
            try channel.writeInbound(data(wire))
            XCTAssertFalse(channel.isActive, "\(wire) did not close the stream")
            XCTAssertTrue(recorder.bytes.isEmpty)
        }
        // A stream that ends inside a message is broken, not cleanly ended.
        let (channel, recorder) = try serverStream(Self.gun())
        try channel.writeInbound(Self.grpcRequest())
        try channel.writeInbound(data(Array(gunMessage([1, 2, 3]).dropLast()), end: true))
        XCTAssertFalse(recorder.inputClosed)
        XCTAssertFalse(channel.isActive)
    }

    func testRawH2StreamCarriesBytesAsTheyAre() throws {
        var settings = HTTPSettings()
        settings.hosts = ["a.test"]
        settings.path = "/up"
        let (channel, recorder) = try serverStream(.http(settings))
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":method": "PUT", ":scheme": "https", ":path": "/up/x", ":authority": "a.test"])))
        try channel.writeInbound(data(Array("raw bytes".utf8), end: true))
        XCTAssertEqual(recorder.bytes, Array("raw bytes".utf8))
        XCTAssertTrue(recorder.inputClosed)
        recorder.answer("back")
        recorder.context?.close(mode: .output, promise: nil)
        let frames = try written(channel)
        XCTAssertEqual(headers(frames.first)?.0.first(name: ":status"), "200")
        XCTAssertEqual(bytes(frames), Array("back".utf8))
        if case .data(let last)? = frames.last { XCTAssertTrue(last.endStream) } else { XCTFail("no END_STREAM") }
    }

    func testClientFailsOnRefusal() throws {
        let channel = EmbeddedChannel()
        addTeardownBlock { _ = try? channel.finish(acceptAlreadyClosed: true) }
        let response = channel.eventLoop.makePromise(of: Void.self)
        let request: HPACKHeaders = [":method": "POST", ":scheme": "http", ":path": "/svc/Tun", ":authority": "x"]
        try channel.pipeline.syncOperations.addHandler(H2StreamHandler(role: .client(request: request, gun: true, response: response), logger: Self.logger))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertEqual(headers(try written(channel).first)?.0.first(name: ":path"), "/svc/Tun", "request sent at activation")
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: [":status": "404"], endStream: true)))
        XCTAssertThrowsError(try response.futureResult.wait())
        XCTAssertFalse(channel.isActive)
    }
}
