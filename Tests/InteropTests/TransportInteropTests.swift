// Transports against real and independent peers, 4 MiB echoed byte for byte in each case:
//
//   v2ray 4.34 client ──ws | tls | ws+tls──▶ vmessd ──freedom──▶ echo
//   raw test client   ──httpupgrade (request + VMess in one write) | ws early data (header, path)──▶ vmessd
//
// plus the two upstream example configs served as written (port and certificate paths aside), and
// refusals (wrong path or Host: HTTP 404, never an upgrade).

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class TransportInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024
    let user = VMessTestUser(security: "aes-128-gcm")

    // MARK: - the real v2ray client

    func testV2RayClientOverWebSocket() throws {
        let ws: [String: Any] = ["network": "ws", "wsSettings": ["path": "/tunnel"]]
        try v2rayEcho(server: ws, client: ws, label: "ws")
    }

    func testV2RayClientOverTLS() throws {
        let cert = try makeSelfSignedCertificate("tls", dnsNames: ["vmessd.test"])
        try v2rayEcho(server: ["network": "tcp", "security": "tls",
                               "tlsSettings": ["certificates": [["certificateFile": cert.certificatePath, "keyFile": cert.keyPath]]]],
                      client: ["network": "tcp", "security": "tls",
                               "tlsSettings": ["serverName": "vmessd.test", "allowInsecure": true]],
                      label: "tls")
    }

    /// ws+tls with the client verifying the server against the test CA (no allowInsecure), and two
    /// certificates on the server chosen by SNI: only the second one verifies for the name the client
    /// asks for, so a wrong pick fails the handshake.
    func testV2RayClientOverWebSocketTLSWithSNIAndVerification() throws {
        let other = try makeSelfSignedCertificate("other", dnsNames: ["other.test"])
        let cert = try makeSelfSignedCertificate("wstls", dnsNames: ["ws.vmessd.test", "*.wild.test"])
        let server: [String: Any] = [
            "network": "ws", "security": "tls", "wsSettings": ["path": "/secure"],
            "tlsSettings": ["alpn": ["http/1.1"], "certificates": [
                ["certificateFile": other.certificatePath, "keyFile": other.keyPath],
                ["certificateFile": cert.certificatePath, "keyFile": cert.keyPath],
            ]],
        ]
        let client: [String: Any] = [
            "network": "ws", "security": "tls", "wsSettings": ["path": "/secure"],
            "tlsSettings": ["serverName": "a.wild.test", "allowInsecure": false,
                            "certificates": [["usage": "verify", "certificateFile": cert.certificatePath]]],
        ]
        try v2rayEcho(server: server, client: client, label: "ws+tls")
    }

    private func v2rayEcho(server: [String: Any], client: [String: Any], label: String, binary: String? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: server), port: port)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port, streamSettings: client,
                                         binary: binary)
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(Self.bulkSize), label: "v2ray \(label) 4 MiB echo")
        assertRunning(vmessd.process, v2ray.process, file: file, line: line)
    }

    /// SIGHUP re-reads the certificate files: after the files are replaced and the config reloaded,
    /// new connections get the new certificate (a client trusting only it gets through, one trusting
    /// only the old one no longer does).
    func testCertificatesAreReReadOnReload() throws {
        let old = try makeSelfSignedCertificate("old", dnsNames: ["vmessd.test"])
        let new = try makeSelfSignedCertificate("new", dnsNames: ["vmessd.test"])
        let served = TestCertificate(certificatePath: workDir.appendingPathComponent("served.crt").path,
                                     keyPath: workDir.appendingPathComponent("served.key").path)
        func serve(_ pair: TestCertificate) throws {
            for (from, to) in [(pair.certificatePath, served.certificatePath), (pair.keyPath, served.keyPath)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        try serve(old)
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: [
            "network": "ws", "security": "tls", "wsSettings": ["path": "/r"],
            "tlsSettings": ["certificates": [["certificateFile": served.certificatePath, "keyFile": served.keyPath]]],
        ]), port: port)
        func client(trusting ca: TestCertificate, _ name: String) throws -> RunningClient {
            try startV2RayClient(serverPort: port, user: user, targetPort: echo.port, streamSettings: [
                "network": "ws", "security": "tls", "wsSettings": ["path": "/r"],
                "tlsSettings": ["serverName": "vmessd.test",
                                "certificates": [["usage": "verify", "certificateFile": ca.certificatePath]]],
            ], name: name)
        }
        let trustsOld = try client(trusting: old, "client-old")
        let trustsNew = try client(trusting: new, "client-new")
        let payload = randomData(64 * 1024)
        try echoRoundTrip(port: trustsOld.dokodemoPort, payload: payload, label: "old certificate before reload")

        try serve(new)
        kill(vmessd.process.pid, SIGHUP)
        let deadline = Date().addingTimeInterval(20)
        var lastError: Error?
        while true {
            do {
                try echoRoundTrip(port: trustsNew.dokodemoPort, payload: payload, label: "new certificate after reload", timeout: 5)
                break
            } catch {
                lastError = error
                guard Date() < deadline else { throw HarnessError("new certificate never served after SIGHUP: \(lastError!)") }
                usleep(300_000)
            }
        }
        XCTAssertThrowsError(try echoRoundTrip(port: trustsOld.dokodemoPort, payload: payload, label: "old certificate after reload", timeout: 5),
                             "the old certificate is still served after the reload")
        assertRunning(vmessd.process, trustsOld.process, trustsNew.process)
    }

    // MARK: - a real client with WebSocket early data (V2Fly 4.45.2)

    /// Header form: earlyDataHeaderName Sec-WebSocket-Protocol on the client; the server needs no setting.
    func testV2Ray445ClientWebSocketEarlyDataInHeader() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        try v2rayEcho(server: ["network": "ws", "wsSettings": ["path": "/ed"]],
                      client: ["network": "ws", "wsSettings": ["path": "/ed", "maxEarlyData": 2048,
                                                              "earlyDataHeaderName": "Sec-WebSocket-Protocol"]],
                      label: "v2ray 4.45.2 ws ED header", binary: binary)
    }

    /// Path form: maxEarlyData without a header name on both sides.
    func testV2Ray445ClientWebSocketEarlyDataInPath() throws {
        let binary = try V2RayRuntime.require(copyInto: workDir)
        let ws: [String: Any] = ["network": "ws", "wsSettings": ["path": "/ed", "maxEarlyData": 2048]]
        try v2rayEcho(server: ws, client: ws, label: "v2ray 4.45.2 ws ED path", binary: binary)
    }

    // MARK: - upstream example: VMess over WebSocket + TLS (v4)

    func testUpstreamWebSocketTLSExampleWithV2RayClient() throws {
        let cert = try makeSelfSignedCertificate("example", dnsNames: ["proxy.example.net"])
        let port = try FreePort.tcp()
        let config = try upstreamExample("vmess-ws-tls.v4.jsonc", port: port, certificate: cert)
        let vmessd = try startVMessd(config: config, port: port)
        let echo = try makeEchoServer()
        // The example's user (alterId 0, security auto).
        let exampleUser = VMessTestUser(id: "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f", security: "auto")
        let v2ray = try startV2RayClient(serverPort: port, user: exampleUser, targetPort: echo.port, streamSettings: [
            "network": "ws", "security": "tls", "wsSettings": ["path": "/guojixinwen"],
            "tlsSettings": ["serverName": "proxy.example.net",
                            "certificates": [["usage": "verify", "certificateFile": cert.certificatePath]]],
        ])
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(Self.bulkSize), label: "upstream ws+tls 4 MiB echo")
        assertRunning(vmessd.process, v2ray.process)
    }

    // MARK: - upstream example: VMess over httpupgrade (v5), pipelining client

    static let httpUpgradeExampleUUID = "34455e67-fb2f-4fba-9b06-a633937a2263"

    /// Xray's httpupgrade client with `ed`: the request head, the VMess header and the first chunk go
    /// out in ONE write, before the 101. The server must keep those bytes.
    func testUpstreamHTTPUpgradeExampleWithPipelinedPayload() throws {
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: try upstreamExample("vmess-httpupgrade.v5.jsonc", port: port), port: port)
        let echo = try makeEchoServer()
        let payload = Array(randomData(Self.bulkSize))
        let session = try TestVMessSession(uuid: Self.httpUpgradeExampleUUID, targetPort: echo.port)
        let first = 8000
        let request = "GET /download HTTP/1.1\r\nHost: proxy.example.net\r\nUser-Agent: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(Self.transferTimeout)
        let oneWrite = Array(request.utf8) + (try session.opening(Array(payload[0..<first])))
        try oneWrite.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "request + VMess in one write") }

        let (head, rest) = try readHTTPHead(fd, deadline: deadline)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), head)
        XCTAssertTrue(head.lowercased().contains("\r\nupgrade: websocket\r\n"), head)
        XCTAssertTrue(head.lowercased().contains("\r\nconnection: upgrade\r\n"), head)
        try runVMessEcho(fd: fd, session: session, payload: payload, sentAlready: first, initialWire: rest,
                         wrap: { $0 }, unwrap: { $0 }, timeout: Self.transferTimeout, label: "httpupgrade pipelined 4 MiB")
        assertRunning(vmessd.process)
    }

    /// The same example config refuses a wrong path, a wrong Host and a plain GET with 404 and never
    /// upgrades.
    func testUpstreamHTTPUpgradeExampleRefusesWrongPathAndHost() throws {
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: try upstreamExample("vmess-httpupgrade.v5.jsonc", port: port), port: port)
        let cases = [
            ("wrong path", "GET /upload HTTP/1.1\r\nHost: proxy.example.net\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            ("wrong host", "GET /download HTTP/1.1\r\nHost: other.example.net\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            ("no upgrade", "GET / HTTP/1.1\r\nHost: proxy.example.net\r\n\r\n"),
        ]
        for (label, request) in cases {
            try assertRefused(port: port, request: request, status: "404", label: label)
        }
        assertRunning(vmessd.process)
    }

    // MARK: - WebSocket early data (no real client here has it: v2ray 4.34 predates it)

    /// Header form (Xray always; v2fly with earlyDataHeaderName): base64url in Sec-WebSocket-Protocol,
    /// echoed in the 101. The server config needs nothing for it.
    func testWebSocketEarlyDataInSecWebSocketProtocol() throws {
        try webSocketEarlyData(settings: ["path": "/ed"], label: "ws ED header") { path, early in
            ("GET \(path) HTTP/1.1", "Sec-WebSocket-Protocol: \(early)\r\n")
        }
    }

    /// v2fly's path form: `maxEarlyData` without a header name, the data appended to the path.
    func testWebSocketEarlyDataInPath() throws {
        try webSocketEarlyData(settings: ["path": "/ed", "maxEarlyData": 2048], label: "ws ED path") { path, early in
            ("GET \(path)\(early) HTTP/1.1", "")
        }
    }

    func testWebSocketWrongPathIsRefusedWith404() throws {
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: [
            "network": "ws", "wsSettings": ["path": "/right"],
        ]), port: port)
        let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        try assertRefused(port: port, request: "GET /wrong HTTP/1.1\r\nHost: x\r\n\(upgrade)\r\n", status: "404", label: "wrong path")
        try assertRefused(port: port, request: "GET /right/more HTTP/1.1\r\nHost: x\r\n\(upgrade)\r\n", status: "404", label: "longer path")
        try assertRefused(port: port, request: "GET /right HTTP/1.1\r\nHost: x\r\n\r\n", status: "400", label: "not an upgrade")
        assertRunning(vmessd.process)
    }

    private func webSocketEarlyData(settings: [String: Any], label: String,
                                    placement: (_ path: String, _ early: String) -> (requestLine: String, header: String)) throws {
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user, streamSettings: [
            "network": "ws", "wsSettings": settings,
        ]), port: port)
        let echo = try makeEchoServer()
        let payload = Array(randomData(Self.bulkSize))
        let session = try TestVMessSession(uuid: user.id, targetPort: echo.port)
        // Header + first chunk stay well under 2048 bytes, the customary ED limit.
        let first = 1000
        let early = base64url(try session.opening(Array(payload[0..<first])))
        let (requestLine, edHeader) = placement("/ed", early)
        let request = "\(requestLine)\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\(edHeader)\r\n"

        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(Self.transferTimeout)
        try Array(request.utf8).withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "upgrade request") }
        let (head, rest) = try readHTTPHead(fd, deadline: deadline)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101 "), head)
        // RFC 6455 §1.3 sample key → accept value.
        XCTAssertTrue(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), head)
        if !edHeader.isEmpty {
            XCTAssertTrue(head.contains("Sec-WebSocket-Protocol: \(early)\r\n"), "ED header not echoed: \(head)")
        }
        var reader = TestWebSocketFrames.Reader()
        var closed = false
        try runVMessEcho(fd: fd, session: session, payload: payload, sentAlready: first, initialWire: rest,
                         wrap: { TestWebSocketFrames.maskedBinary($0) },
                         unwrap: { wire in
                             // Data that came in the same read as a Close frame still counts.
                             if closed { return nil }
                             var bytes: [UInt8] = []
                             for event in reader.feed(wire) {
                                 switch event {
                                 case .data(let d): bytes += d
                                 case .close: closed = true
                                 case .control: break
                                 }
                             }
                             return closed && bytes.isEmpty ? nil : bytes
                         }, timeout: Self.transferTimeout, label: "\(label) 4 MiB")
        XCTAssertEqual(reader.maskedFrames, 0, "the server masked its frames")
        assertRunning(vmessd.process)
    }

    // MARK: - helpers

    /// Sends `request`, expects `HTTP/1.1 <status>` and no 101, then the connection to close.
    private func assertRefused(port: UInt16, request: String, status: String, label: String,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(10)
        try Array(request.utf8).withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: label) }
        let (head, _) = try readHTTPHead(fd, deadline: deadline)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 \(status) "), "\(label): \(head)", file: file, line: line)
        XCTAssertFalse(head.contains("101"), "\(label): \(head)", file: file, line: line)
        let after = try Sock.read(fd, count: 1, deadline: deadline, what: "\(label): close after refusal")
        XCTAssertTrue(after.eof && after.data.isEmpty, "\(label): connection not closed after the refusal", file: file, line: line)
    }

    private func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
