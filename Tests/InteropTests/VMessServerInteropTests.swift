// The real V2Ray 4.34 client against the vmessd server (`vmessd run -c FILE --workers 2`, the binaries
// from the build directory), with loopback echo/source/sink targets behind it:
//
//   test ──tcp──▶ v2ray client (dokodemo-door | socks5) ──vmess──▶ vmessd ──freedom──▶ target
//
// `INTEROP_SERVER=v2ray` runs the same tests against the reference v2ray server instead, which is how
// the harness itself is validated; HarnessSelfCheckTests keeps one such test in every run.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class VMessServerInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024

    // MARK: - bulk echo per security (≥ 4 MiB each way through the tunnel)

    func testEchoAES128GCM() throws { try bulkEcho(VMessTestUser(security: "aes-128-gcm")) }
    func testEchoChaCha20Poly1305() throws { try bulkEcho(VMessTestUser(security: "chacha20-poly1305")) }
    func testEchoNone() throws { try bulkEcho(VMessTestUser(security: "none")) }
    func testEchoZero() throws { try bulkEcho(VMessTestUser(security: "zero")) }
    func testEchoAuto() throws { try bulkEcho(VMessTestUser(security: "auto")) }
    func testEchoLegacyAlterId4AES128GCM() throws { try bulkEcho(VMessTestUser(alterId: 4, security: "aes-128-gcm")) }

    private func bulkEcho(_ user: VMessTestUser, file: StaticString = #filePath, line: UInt = #line) throws {
        let echo = try makeEchoServer()
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: echo.port)
        let payload = randomData(Self.bulkSize)
        try echoRoundTrip(port: client.dokodemoPort, payload: payload,
                          label: "\(server.kind) \(user.security) alterId=\(user.alterId) 4 MiB echo")
        assertRunning(server.process, client.process, file: file, line: line)
    }

    // MARK: - each direction on its own

    /// 4 MiB upstream only (to a sink that checks it) while 4 MiB comes downstream only (from a source
    /// that then half-closes). The client keeps its write side open until the sink holds every upload
    /// byte, and only then half-closes and expects the tunnel to end: V2Ray itself (4.34, as server)
    /// drops the tail of an upload still in flight when the client half-closes after the download
    /// finished (its inbound cancels the freedom context), so an earlier half-close would test V2Ray's
    /// race rather than the server under test.
    func testEachWayAES128GCM() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let download = randomData(Self.bulkSize)
        let upload = randomData(Self.bulkSize)
        let target = try makeEchoServer(.sourceSink(download: download))
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: target.port)

        let fd = try Sock.connect(port: client.dokodemoPort)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(Self.transferTimeout)
        let writer = BackgroundTask<Void>("upload") {
            try Sock.writeAll(fd, upload, deadline: deadline, what: "upload")
        }
        let got: (data: Data, eof: Bool)
        do {
            got = try Sock.read(fd, count: download.count, deadline: deadline, what: "download")
        } catch {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            throw HarnessError("\(server.kind): \(error) [upload writer: \(Self.describe(writer.join(timeout: 5)))]")
        }
        XCTAssertNil(describeMismatch(expected: download, actual: got.data).map { "download: \($0)" })
        XCTAssertFalse(got.eof, "download ended early")
        try writer.value(timeout: max(1, deadline.timeIntervalSinceNow), what: "upload writer did not finish")

        let uploaded = try target.waitForUpload(connection: 0, count: upload.count, timeout: Self.transferTimeout)
        let record = target.connection(0)
        XCTAssertNil(describeMismatch(expected: upload, actual: uploaded).map {
            "upload at the sink: \($0) (sink saw EOF: \(record?.sawEOF ?? false), error: \(record?.error ?? "none"))"
        })

        // Both directions are done: after our half-close the tunnel must end (EOF or reset), and
        // never with extra bytes.
        Glibc.shutdown(fd, Int32(SHUT_WR))
        do {
            let tail = try Sock.read(fd, count: 1, deadline: Date().addingTimeInterval(15), what: "end of tunnel")
            XCTAssertEqual(tail.data.count, 0, "bytes after the end of the download")
        } catch SocketError.timeout {
            XCTFail("\(server.kind): tunnel still open 15 s after both directions finished and half-closed")
        } catch {
            // reset: an ended tunnel too
        }
        XCTAssertEqual(target.connectionCount, 1, "the target saw extra connections")
        assertRunning(server.process, client.process)
    }

    // MARK: - UDP

    /// socks5 UDP ASSOCIATE at the v2ray client → vmess (UDP command) → server → UDP echo.
    func testUDPThroughSocks5Associate() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: udpEcho.port)
        let association = try SOCKS5UDPAssociation(socksPort: client.socksPort)
        onTearDown { association.close() }

        var sizes = [1, 2, 3, 7, 8, 16, 31, 64, 100, 127, 128, 255, 256, 511, 512, 576, 1000, 1023, 1024,
                     1200, 1280, 1399, 1400]
        while sizes.count < 50 { sizes.append(Int.random(in: 1...1400)) }
        var sent: [Data] = []
        var retries = 0
        for (index, size) in sizes.enumerated() {
            let payload = randomData(size)
            sent.append(payload)
            var matched = false
            attempts: for attempt in 1...2 {
                if attempt == 2 { retries += 1 }
                try association.send(payload, toPort: udpEcho.port)
                let until = Date().addingTimeInterval(index == 0 ? 5 : 3)
                while let reply = try association.receive(timeout: until.timeIntervalSinceNow) {
                    if reply.payload == payload {
                        XCTAssertEqual(reply.fromPort, udpEcho.port, "datagram #\(index): wrong source port in the SOCKS header")
                        matched = true
                        break attempts
                    }
                    // A late echo of an earlier datagram (after a retry) is fine; anything else is corruption.
                    guard sent.contains(reply.payload) else {
                        throw HarnessError("\(server.kind): datagram #\(index) (\(size) bytes): received \(reply.payload.count) bytes that match nothing sent")
                    }
                }
            }
            if !matched {
                throw HarnessError("\(server.kind): datagram #\(index) (\(size) bytes) was not echoed (2 attempts, \(udpEcho.datagramsEchoed) datagrams reached the echo server so far)")
            }
        }
        XCTAssertLessThanOrEqual(retries, 2, "too many datagrams needed a retry on loopback")
        assertRunning(server.process, client.process)
    }

    // MARK: - concurrency

    /// 64 connections open at the same time, each echoing 256 KiB.
    func testParallel64Connections() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: echo.port)
        let count = 64
        let size = 256 * 1024

        // Barrier: every connection is open before any of them sends, so all 64 are truly concurrent.
        let connected = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        var tasks: [BackgroundTask<Void>] = []
        for i in 0..<count {
            connected.enter()
            tasks.append(BackgroundTask("conn-\(i)") { [self] in
                let fd: Int32
                do {
                    fd = try Sock.connect(port: client.dokodemoPort)
                } catch {
                    connected.leave()
                    throw error
                }
                connected.leave()
                _ = go.wait(timeout: .now() + 20)
                try echoRoundTrip(fd: fd, payload: randomData(size), label: "connection \(i) of \(count)")
            })
        }
        XCTAssertEqual(connected.wait(timeout: .now() + 20), .success, "not all connections were opened")
        for _ in 0..<count { go.signal() }
        let failures = failures(of: tasks, name: "connection")
        XCTAssert(failures.isEmpty, "\(server.kind): \(failures.count) of \(count) connections failed:\n"
                  + failures.prefix(10).joined(separator: "\n") + "\n" + echo.summary(expectedPerConnection: size))
        XCTAssertEqual(echo.connectionCount, count, "the echo target saw a different number of connections")
        assertRunning(server.process, client.process)
    }

    // MARK: - config format

    /// The v5 file format (`settings.users: [uuid]`), same data check as v4.
    func testV5ConfigFormat() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(users: [user], format: .v5)
        let client = try startClient(server: server, user: user, targetPort: echo.port)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(Self.bulkSize), label: "v5 config 4 MiB echo")
        assertRunning(server.process, client.process)
    }

    // MARK: - anti-probing

    /// Random bytes from an unauthenticated client never get a single reply byte: the server either
    /// closes after draining (VMess §11.1) or keeps holding the connection; meanwhile a valid client
    /// keeps working.
    func testRandomBytesGetNoReplyAndValidTrafficContinues() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: echo.port)

        let probe = try Sock.connect(port: server.port)
        defer { close(probe) }
        Sock.setTimeouts(probe, seconds: 0.1)
        // A write error (EPIPE/ECONNRESET) just means the server already closed: allowed.
        let deadline = Date().addingTimeInterval(5)
        var writeNote = "all 2016 bytes written"
        do {
            try Sock.writeAll(probe, randomData(16), deadline: deadline, what: "probe auth id")
            usleep(100_000)
            try Sock.writeAll(probe, randomData(2000), deadline: deadline, what: "probe body")
        } catch {
            writeNote = "write stopped: \(error)"
        }

        // Valid traffic on a concurrent connection while the probe is open.
        let valid = BackgroundTask<Void>("valid") { [self] in
            try echoRoundTrip(port: client.dokodemoPort, payload: randomData(1024 * 1024), label: "valid connection during probe")
        }

        // Watch the probe for 1 s (plus slack): any byte is a failure; EOF/RST or silence are fine.
        let watchUntil = Date().addingTimeInterval(1.2)
        var replyBytes = 0
        var outcome = "still open after 1 s (held)"
        var buffer = [UInt8](repeating: 0, count: 4096)
        watching: while Date() < watchUntil {
            let r: Sock.ReadResult
            do {
                r = try buffer.withUnsafeMutableBytes { try Sock.readSome(probe, $0) }
            } catch {
                outcome = "reset by the server (\(error))"
                break watching
            }
            switch r {
            case .data(let n): replyBytes += n
            case .eof:
                outcome = "closed by the server"
                break watching
            case .wouldBlock: continue
            }
        }
        XCTAssertEqual(replyBytes, 0, "\(server.kind) answered a probe with \(replyBytes) bytes (outcome: \(outcome), \(writeNote))")
        print("anti-probing [\(server.kind)]: \(outcome); \(writeNote)")

        try valid.value(timeout: Self.transferTimeout, what: "valid connection during probe did not finish")
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(256 * 1024), label: "valid connection after probe")
        assertRunning(server.process, client.process)
    }
}
