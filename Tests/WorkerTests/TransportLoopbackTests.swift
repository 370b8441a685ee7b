import Foundation
import NIOCore
import NIOPosix
import XCTest
@testable import Shared
@testable import Worker

/// Ours against ours over real loopback sockets: StreamDialer (client) to InboundTransport (server)
/// for every combination of tcp, ws and httpupgrade with none and tls, and every early-data mode;
/// 4 MiB echoed byte for byte through a stand-in protocol handler on each side.
final class TransportLoopbackTests: XCTestCase {
    static let size = 4 * 1024 * 1024
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var certificateDirectory: URL!

    override func tearDown() {
        try? group.syncShutdownGracefully()
        if let certificateDirectory { try? FileManager.default.removeItem(at: certificateDirectory) }
        super.tearDown()
    }

    /// Echoes every byte back (the server's "protocol").
    final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.write(data, promise: nil) }
        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    }

    /// Collects `expected` bytes (the client's "protocol").
    final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let expected: Int
        let done: EventLoopPromise<[UInt8]>
        var bytes: [UInt8] = []
        init(expected: Int, done: EventLoopPromise<[UInt8]>) {
            self.expected = expected
            self.done = done
            bytes.reserveCapacity(expected)
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            bytes += b.readableBytesView
            if bytes.count >= expected { done.succeed(bytes) }
        }
        func channelInactive(context: ChannelHandlerContext) {
            done.fail(ChannelError.eof)
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            done.fail(error)
        }
    }

    // MARK: the matrix

    func testTCP() throws { try echo(StreamSettings()) }
    func testTLS() throws { try echo(tls(StreamSettings())) }
    func testWebSocket() throws { try echo(ws()) }
    func testWebSocketTLS() throws { try echo(tls(ws())) }
    func testHTTPUpgrade() throws { try echo(hu()) }
    func testHTTPUpgradeTLS() throws { try echo(tls(hu())) }

    func testWebSocketEarlyDataPath() throws { try echo(ws(maxEarlyData: 2048)) }
    func testWebSocketEarlyDataHeaderTLS() throws { try echo(tls(ws(maxEarlyData: 2048, header: "Sec-WebSocket-Protocol"))) }
    func testWebSocketEarlyDataXrayQuery() throws {
        var client = ws()
        client.ws?.path = "/ws?ed=2048"
        try echo(client: client, server: ws())
    }
    func testHTTPUpgradePipelined() throws { try echo(hu(maxEarlyData: 2048)) }
    func testHTTPUpgradeV2flyHeaderEarlyData() throws { try echo(hu(maxEarlyData: 2048, header: "Sec-WebSocket-Protocol")) }

    func testWrongPathFailsTheDial() throws {
        var client = ws()
        client.ws?.path = "/elsewhere"
        XCTAssertThrowsError(try echo(client: client, server: ws())) { error in
            XCTAssertTrue("\(error)".contains("404"), "\(error)")
        }
    }

    // MARK: settings

    func ws(maxEarlyData: Int = 0, header: String? = nil) -> StreamSettings {
        var s = StreamSettings()
        s.network = .ws
        var w = WebSocketSettings()
        w.path = "/ws"
        w.host = "ws.example"
        w.maxEarlyData = maxEarlyData
        w.earlyDataHeaderName = header
        s.ws = w
        return s
    }

    func hu(maxEarlyData: Int = 0, header: String? = nil) -> StreamSettings {
        var s = StreamSettings()
        s.network = .httpupgrade
        var h = HTTPUpgradeSettings()
        h.path = "/up"
        h.host = "hu.example"
        h.maxEarlyData = maxEarlyData
        h.earlyDataHeaderName = header
        s.httpUpgrade = h
        return s
    }

    /// TLS with a certificate for vmessd.test made by openssl; the client verifies it as its CA.
    func tls(_ base: StreamSettings) throws -> StreamSettings {
        var s = base
        s.security = .tls
        let (cert, key) = try makeCertificate()
        var t = TLSSettings()
        t.serverName = "vmessd.test"
        t.certificates = [TLSSettings.Certificate(certificatePEM: cert, keyPEM: key)]
        t.authorityCertificates = [cert]
        t.alpn = ["http/1.1"]
        s.tls = t
        return s
    }

    func makeCertificate() throws -> (String, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmessd-transport-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        certificateDirectory = dir
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", dir.appendingPathComponent("k.pem").path, "-out", dir.appendingPathComponent("c.pem").path,
                       "-days", "2", "-subj", "/CN=vmessd.test", "-addext", "subjectAltName=DNS:vmessd.test"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("openssl req failed") }
        return (try String(contentsOf: dir.appendingPathComponent("c.pem"), encoding: .utf8),
                try String(contentsOf: dir.appendingPathComponent("k.pem"), encoding: .utf8))
    }

    // MARK: the exchange

    func echo(_ stream: StreamSettings) throws {
        var server = stream
        if server.security == .tls { server.tls?.authorityCertificates = [] }
        try echo(client: stream, server: server)
    }

    func echo(client: StreamSettings, server: StreamSettings) throws {
        let loop = group.next()
        let transport = try InboundTransport(stream: server)
        let listener = try ServerBootstrap(group: loop)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                transport.configure(channel) { channel in try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? listener.close().wait() }
        let port = listener.localAddress!.port!

        let done = loop.makePromise(of: [UInt8].self)
        let dialer = StreamDialer(stream: client)
        let channel = try dialer.connect(host: "127.0.0.1", port: port, on: loop, timeout: .seconds(5)) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(Collector(expected: Self.size, done: done))
            }
        }.wait()
        defer { channel.close(promise: nil) }

        let payload = SecureRandom.bytes(Self.size)
        // In writes of 16 KiB (the first one is what early data takes from).
        try loop.submit {
            var offset = 0
            while offset < payload.count {
                let n = min(16 * 1024, payload.count - offset)
                channel.write(channel.allocator.buffer(bytes: payload[offset..<(offset + n)]), promise: nil)
                offset += n
            }
            channel.flush()
        }.wait()
        let received = try done.futureResult.wait()
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload, "echoed bytes differ")
    }
}
