import Foundation
import NIOCore
import NIOPosix
import XCTest
@testable import Shared
@testable import Worker
#if canImport(Glibc)
import Glibc
#endif

/// Two KCPSessions (the shell around the ARQ core) over real loopback UDP, each with its
/// socketpair, the dialer's session on one side and a hand-made server session on the other: bytes
/// written into one stream come out of the other identical, both ways at once. The send window is
/// a handful of segments, so it is full nearly all the time and one `read()` of the local stream
/// often brings more than the window takes (the case that once dropped stream bytes).
final class KCPSessionLoopbackTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func tearDown() {
        try? group.syncShutdownGracefully()
        super.tearDown()
    }

    func testSmallWindowCarriesEveryByteBothWays() throws {
        var settings = KCPSettings()
        settings.tti = 10
        settings.writeBufferSize = 6 * settings.mtu  // 6 segments queued at most
        settings.uplinkCapacity = 1
        settings.downlinkCapacity = 1
        try carry(settings: settings, size: 3 * 1024 * 1024)
    }

    func testSeedAndHeaderSmallWindow() throws {
        var settings = KCPSettings()
        settings.tti = 10
        settings.writeBufferSize = 3 * settings.mtu
        settings.header = .wechatVideo
        settings.seed = "loopback"
        try carry(settings: settings, size: 1024 * 1024)
    }

    private func carry(settings: KCPSettings, size: Int) throws {
        let loop = group.next()
        // The server end: the dialer's own handler, told the client's address once it is known.
        let serverUDP = try DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).wait()
        defer { serverUDP.close(promise: nil) }
        let serverPort = serverUDP.localAddress!.port!

        let dialed = try KCPDialer.dial(host: "127.0.0.1", port: serverPort, settings: settings, on: loop).wait()
        let clientFD = dialed.fd
        let clientPort = try loop.submit { dialed.session.udp.localAddress!.port! }.wait()
        let clientAddress = try NIOCore.SocketAddress(ipAddress: "127.0.0.1", port: clientPort)

        let (serverOuter, serverFD) = try Posix.makeStreamPair()
        let codec = try KCPPacketCodec(settings: settings)
        let serverSession = try loop.submit {
            let session = KCPSession(conv: dialed.session.connection.conv, settings: settings, codec: codec,
                                     remote: clientAddress, udp: serverUDP)
            let handler = KCPClientHandler(remote: clientAddress)
            try serverUDP.pipeline.syncOperations.addHandler(handler)
            handler.start(session: session, codec: codec, tti: settings.tti, channel: serverUDP)
            return session
        }.wait()
        try serverSession.attach(outerFD: serverOuter, on: loop).wait()
        defer {
            close(clientFD)
            close(serverFD)
            _ = try? loop.submit { dialed.session.terminate(); serverSession.terminate() }.wait()
        }

        let upload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        let download = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        let results = Results()
        let done = DispatchGroup()
        for (fd, bytes) in [(clientFD, upload), (serverFD, download)] {
            DispatchQueue.global().async(group: done) { Self.writeAll(fd, bytes) }
        }
        DispatchQueue.global().async(group: done) { results.set(up: Self.read(serverFD, count: size)) }
        DispatchQueue.global().async(group: done) { results.set(down: Self.read(clientFD, count: size)) }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "transfer did not finish")
        let (up, down) = results.get()
        XCTAssertEqual(up.count, size, "upload length")
        XCTAssertTrue(up == upload, "upload bytes differ (first at \(firstDifference(up, upload)))")
        XCTAssertEqual(down.count, size, "download length")
        XCTAssertTrue(down == download, "download bytes differ (first at \(firstDifference(down, download)))")
    }

    private func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].prefix(256 * 1024).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Reads `count` bytes or until EOF, error or 10 s of silence.
    private static func read(_ fd: Int32, count: Int) -> [UInt8] {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while out.count < count {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var up: [UInt8] = [], down: [UInt8] = []
        func set(up bytes: [UInt8]) { lock.withLock { up = bytes } }
        func set(down bytes: [UInt8]) { lock.withLock { down = bytes } }
        func get() -> ([UInt8], [UInt8]) { lock.withLock { (up, down) } }
    }
}
