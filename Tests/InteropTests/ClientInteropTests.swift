// vmessd as the client side of a deployment, against the real V2Ray 4.34 server (and against vmessd as
// server for mux), with loopback echo/HTTP targets behind it:
//
//   test ──▶ vmessd client (socks5 | http | dokodemo-door) ──vmess──▶ v2ray server ──freedom──▶ target

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ClientInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024

    // MARK: - every security through socks5, 4 MiB each way

    func testSocksEchoAES128GCM() throws { try socksEcho(VMessTestUser(security: "aes-128-gcm")) }
    func testSocksEchoChaCha20Poly1305() throws { try socksEcho(VMessTestUser(security: "chacha20-poly1305")) }
    func testSocksEchoNone() throws { try socksEcho(VMessTestUser(security: "none")) }
    func testSocksEchoZero() throws { try socksEcho(VMessTestUser(security: "zero")) }
    func testSocksEchoAuto() throws { try socksEcho(VMessTestUser(security: "auto")) }
    func testSocksEchoLegacyAlterId4() throws { try socksEcho(VMessTestUser(alterId: 4, security: "aes-128-gcm")) }

    private func socksEcho(_ user: VMessTestUser, file: StaticString = #filePath, line: UInt = #line) throws {
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        let client = try startVMessdClient(VMessdClientSetup(serverPort: server.port, user: user))
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize),
                          label: "socks → v2ray \(user.security) alterId=\(user.alterId) 4 MiB echo")
        assertRunning(server.process, client.process, file: file, line: line)
    }

    // MARK: - the other inbounds

    func testHTTPConnectEcho() throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        let client = try startVMessdClient(VMessdClientSetup(serverPort: server.port, user: user))
        let fd = try HTTPProxyClient.connect(proxyPort: client.httpPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize), label: "http CONNECT 4 MiB echo")
        assertRunning(server.process, client.process)
    }

    func testHTTPPlainGetIsForwardedInOriginForm() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let origin = try HTTPOriginServer(body: "hello through the tunnel\n")
        onTearDown { origin.stop() }
        let server = try startServer(.v2ray, users: [user])
        let client = try startVMessdClient(VMessdClientSetup(serverPort: server.port, user: user))
        let response = try HTTPProxyClient.exchange(proxyPort: client.httpPort, request:
            "GET http://127.0.0.1:\(origin.port)/some/path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:\(origin.port)\r\n"
            + "Proxy-Connection: keep-alive\r\nUser-Agent: interop\r\n\r\n")
        XCTAssertTrue(response.hasPrefix("HTTP/1.1 200 OK\r\n"), response)
        XCTAssertTrue(response.hasSuffix("\r\n\r\nhello through the tunnel\n"), response)
        let head = try XCTUnwrap(origin.requestHeads.first)
        XCTAssertTrue(head.hasPrefix("GET /some/path?q=1 HTTP/1.1\r\n"), head)
        XCTAssertFalse(head.lowercased().contains("proxy-connection"), head)
        XCTAssertTrue(head.contains("User-Agent: interop\r\n"), head)
        assertRunning(server.process, client.process)
    }

    func testHTTPErrorsAreStatusLines() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.httpAccounts = [("alice", "s3cret")]
        let client = try startVMessdClient(setup)
        let denied = try HTTPProxyClient.exchange(proxyPort: client.httpPort, request: "CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n")
        XCTAssertTrue(denied.hasPrefix("HTTP/1.1 407 Proxy Authentication Required\r\n"), denied)
        XCTAssertTrue(denied.contains("Proxy-Authenticate: Basic"), denied)
        let auth = "Proxy-Authorization: Basic \(Data("alice:s3cret".utf8).base64EncodedString())\r\n"
        let bad = try HTTPProxyClient.exchange(proxyPort: client.httpPort, request: "GET /relative HTTP/1.1\r\nHost: x\r\n\(auth)\r\n")
        XCTAssertTrue(bad.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), bad)
        // Authorised, but nothing listens at the target: the server's freedom fails, the tunnel ends
        // before any byte of the target, and the client gets a 502.
        let deadPort = try FreePort.tcp()
        let failed = try HTTPProxyClient.exchange(proxyPort: client.httpPort,
                                                  request: "GET http://127.0.0.1:\(deadPort)/ HTTP/1.1\r\n\(auth)\r\n")
        XCTAssertTrue(failed.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), failed)
        assertRunning(server.process, client.process)
    }

    func testDokodemoDoorEcho() throws {
        let (echo, server, client) = try startDokodemoThroughVMessdClient()
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(Self.bulkSize), label: "dokodemo-door 4 MiB echo")
        XCTAssertEqual(echo.connectionCount, 1)
        assertRunning(server.process, client.process)
    }

    func testSocksPasswordAcceptedAndRefused() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.socksAccounts = [("alice", "s3cret"), ("bob", "hunter2")]
        let client = try startVMessdClient(setup)

        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port, auth: ("bob", "hunter2"))
        try echoRoundTrip(fd: fd, payload: randomData(256 * 1024), label: "socks with password")

        let (wrong, outcome) = try SOCKS5Client.attempt(proxyPort: client.socksPort, targetPort: echo.port,
                                                        auth: ("alice", "wrong"), timeout: 10)
        close(wrong)
        XCTAssertEqual(outcome, .refused(step: "auth", code: 0x01))
        let (none, noAuth) = try SOCKS5Client.attempt(proxyPort: client.socksPort, targetPort: echo.port, auth: nil, timeout: 10)
        close(none)
        XCTAssertEqual(noAuth, .refused(step: "method", code: 0xFF))
        XCTAssertEqual(echo.connectionCount, 1, "a refused client reached the target")
        assertRunning(server.process, client.process)
    }

    // MARK: - UDP

    func testUDPThroughSocks5Associate() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(.v2ray, users: [user])
        let client = try startVMessdClient(VMessdClientSetup(serverPort: server.port, user: user))
        let association = try SOCKS5UDPAssociation(socksPort: client.socksPort)
        onTearDown { association.close() }
        try exchangeDatagrams(count: 40, label: "socks UDP") { payload in
            try association.send(payload, toPort: udpEcho.port)
        } receive: { timeout in
            try association.receive(timeout: timeout).map { reply in
                XCTAssertEqual(reply.fromPort, udpEcho.port, "wrong source port in the SOCKS header")
                return reply.payload
            }
        }
        assertRunning(server.process, client.process)
        // Ends the association now: a draining vmessd would otherwise wait for its control connection.
        association.close()
    }

    func testUDPThroughDokodemoDoor() throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.dokodemoTarget = (udpEcho.port, "udp")
        let client = try startVMessdClient(setup)
        let socket = try UDPTestSocket()
        onTearDown { socket.close() }
        // Each worker binds the UDP port itself after READY; give them a moment to have done so.
        try exchangeDatagrams(count: 30, label: "dokodemo-door UDP", firstTimeout: 8) { payload in
            try socket.send(payload, toPort: client.dokodemoPort)
        } receive: { timeout in
            try socket.receive(timeout: timeout)
        }
        assertRunning(server.process, client.process)
    }

    /// Sends datagrams of varied sizes one at a time and expects each echoed (one retry allowed on
    /// loopback, as in the server tests).
    private func exchangeDatagrams(count: Int, label: String, firstTimeout: TimeInterval = 5,
                                   send: (Data) throws -> Void, receive: (TimeInterval) throws -> Data?) throws {
        var sizes = [1, 2, 7, 64, 100, 512, 1000, 1200, 1400]
        while sizes.count < count { sizes.append(Int.random(in: 1...1400)) }
        var sent: [Data] = []
        var retries = 0
        for (index, size) in sizes.enumerated() {
            let payload = randomData(size)
            sent.append(payload)
            var matched = false
            attempts: for attempt in 1...3 {
                if attempt > 1 { retries += 1 }
                try send(payload)
                let until = Date().addingTimeInterval(index == 0 ? firstTimeout : 3)
                while let reply = try receive(until.timeIntervalSinceNow) {
                    if reply == payload { matched = true; break attempts }
                    guard sent.contains(reply) else {
                        throw HarnessError("\(label): datagram #\(index): \(reply.count) bytes that match nothing sent")
                    }
                }
            }
            if !matched { throw HarnessError("\(label): datagram #\(index) (\(size) bytes) was not echoed") }
        }
        XCTAssertLessThanOrEqual(retries, 3, "\(label): too many datagrams needed a retry on loopback")
    }

    // MARK: - config forms and failover

    /// A v5 file (detected as v5: `log` objects) with the simplified vmess outbound and socks inbound.
    func testV5ConfigFile() throws {
        let user = VMessTestUser(security: "auto")
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.v5 = true
        let client = try startVMessdClient(setup)
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize), label: "v5 config 4 MiB echo")
        assertRunning(server.process, client.process)
    }

    /// The first server refuses connections: every request fails over to the second; several users
    /// on one server are used in turn.
    func testFailoverAndSeveralUsers() throws {
        let users = [VMessTestUser(security: "aes-128-gcm"), VMessTestUser(security: "none"), VMessTestUser(alterId: 2, security: "zero")]
        let echo = try makeEchoServer()
        let server = try startServer(.v2ray, users: users)
        let deadPort = try FreePort.tcp()
        let client = try startVMessdClient(VMessdClientSetup(servers: [.init(port: deadPort, users: [users[0]]),
                                                                      .init(port: server.port, users: users)]))
        for i in 0..<6 {
            let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
            try echoRoundTrip(fd: fd, payload: randomData(64 * 1024), label: "failover request \(i)")
        }
        XCTAssertEqual(echo.connectionCount, 6)
        assertRunning(server.process, client.process)
    }

    // MARK: - Mux.Cool

    func testMuxToV2RayServer16Flows() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let server = try startServer(.v2ray, users: [user])
        try muxFlows(server: server, user: user)
        // The v2ray server saw mux requests, not 16 plain ones.
        XCTAssertTrue(server.process.output().contains("v1.mux.cool"), "no mux request reached the server")
    }

    func testMuxToVMessdServer16Flows() throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let server = try startServer(.vmessd, users: [user])
        try muxFlows(server: server, user: user)
    }

    /// UDP through socks5 rides a mux session (network 0x02) when mux is on.
    func testMuxUDPToV2RayServer() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(.v2ray, users: [user])
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.mux = 8
        let client = try startVMessdClient(setup)
        let association = try SOCKS5UDPAssociation(socksPort: client.socksPort)
        onTearDown { association.close() }
        try exchangeDatagrams(count: 30, label: "mux UDP") { payload in
            try association.send(payload, toPort: udpEcho.port)
        } receive: { timeout in
            try association.receive(timeout: timeout).map(\.payload)
        }
        association.close()
        XCTAssertTrue(server.process.output().contains("v1.mux.cool"), "no mux request reached the server")
        assertRunning(server.process, client.process)
    }

    /// 16 socks connections at once, each echoing 256 KiB, over mux (concurrency 8).
    private func muxFlows(server: RunningServer, user: VMessTestUser, file: StaticString = #filePath, line: UInt = #line) throws {
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: server.port, user: user)
        setup.mux = 8
        let client = try startVMessdClient(setup)
        let count = 16
        let size = 256 * 1024
        let go = DispatchSemaphore(value: 0)
        var tasks: [BackgroundTask<Void>] = []
        for i in 0..<count {
            tasks.append(BackgroundTask("mux-flow-\(i)") { [self] in
                let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
                _ = go.wait(timeout: .now() + 20)
                try echoRoundTrip(fd: fd, payload: randomData(size), label: "mux flow \(i) of \(count)")
            })
        }
        // One bad sub-stream among them: its target refuses, the server ends just that session.
        let deadPort = try FreePort.tcp()
        let bad = BackgroundTask<Void>("mux-bad-flow") {
            let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: deadPort)
            defer { close(fd) }
            _ = go.wait(timeout: .now() + 20)
            try Sock.writeAll(fd, Data("hello?".utf8), deadline: Date().addingTimeInterval(10))
            let r = try Sock.read(fd, count: 1, deadline: Date().addingTimeInterval(20), what: "end of the refused flow")
            guard r.eof, r.data.isEmpty else { throw HarnessError("refused flow got \(r.data.count) bytes") }
        }
        for _ in 0...count { go.signal() }
        var failures: [String] = []
        do {
            try bad.value(timeout: 30, what: "the refused flow did not end")
        } catch {
            failures.append("refused flow: \(error)")
        }
        for (i, task) in tasks.enumerated() {
            switch task.join(timeout: Self.transferTimeout + 10) {
            case nil: failures.append("flow \(i): still running")
            case .failure(let e)?: failures.append("\(e)")
            case .success?: break
            }
        }
        XCTAssert(failures.isEmpty, "\(server.kind): \(failures.count) of \(count) mux flows failed:\n"
                  + failures.prefix(8).joined(separator: "\n") + "\n" + echo.summary(expectedPerConnection: size),
                  file: file, line: line)
        XCTAssertEqual(echo.connectionCount, count, file: file, line: line)
        assertRunning(server.process, client.process, file: file, line: line)
    }
}
