// The tcp transport's HTTP disguise (`tcpSettings.header.type: "http"`) against the real v2ray 4.34,
// both ways, plain and under TLS, 4 MiB echoed byte for byte:
//
//   v2ray client (and Xray's) ──tcp+http header [+tls]──▶ vmessd server ──freedom──▶ echo
//   vmessd client ──tcp+http header [+tls]──▶ v2ray server | vmessd server ──freedom──▶ echo
//
// and on a raw socket: a wrong path gets V2Ray's 404 and never a VMess byte (checked against the
// reference server too), and a head sent in one write with the VMess request behind it loses nothing.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class TCPHTTPHeaderInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024

    /// The server accepts two paths and answers a 200 with a chosen Server header; the client sends one
    /// of them with its own Host values (picked at random per connection).
    static let serverHeader: [String: Any] = [
        "type": "http",
        "request": ["path": ["/vmess", "/video/stream.m3u8"]],
        "response": ["status": "200", "reason": "OK", "headers": ["Server": ["nginx/1.24.0"], "Content-Type": ["video/mpeg"]]],
    ]
    static let clientHeader: [String: Any] = [
        "type": "http",
        "request": ["path": ["/video/stream.m3u8"], "headers": ["Host": ["cdn1.test", "cdn2.test"], "User-Agent": ["curl/8.5"]]],
    ]

    func stream(_ header: [String: Any], tls certificate: TestCertificate? = nil, server: Bool) -> [String: Any] {
        var s: [String: Any] = ["network": "tcp", "tcpSettings": ["header": header]]
        if let certificate {
            certificate.secure(&s, server: server)
        }
        return s
    }

    // MARK: - v2ray client → vmessd

    func testV2RayClientToVMessd() throws { try v2rayClient(tls: false) }
    func testV2RayClientToVMessdTLS() throws { try v2rayClient(tls: true) }

    private func v2rayClient(tls: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let certificate = tls ? try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"]) : nil
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(
            port: port, user: user, streamSettings: stream(Self.serverHeader, tls: certificate, server: true)), port: port)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                         streamSettings: stream(Self.clientHeader, tls: certificate, server: false))
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(Self.bulkSize),
                          label: "v2ray → vmessd tcp http header\(tls ? "+tls" : "") 4 MiB echo")
        // A few short connections too: each one picks its own head.
        for i in 0..<5 {
            try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(1000 + i), label: "short connection \(i)")
        }
        assertRunning(vmessd.process, v2ray.process, file: file, line: line)
    }

    /// The same disguise written in the v5 format (headerSettings, a typed message) on the vmessd server,
    /// the v2ray 4.34 client in v4.
    func testV2RayClientToVMessdV5Config() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let header: [String: Any] = [
            "@type": "v2ray.core.transport.internet.headers.http.Config",
            "request": ["uri": ["/vmess", "/video/stream.m3u8"]],
            "response": ["status": ["code": "200", "reason": "OK"], "header": [["name": "Server", "value": ["nginx/1.24.0"]]]],
        ]
        let config = TestConfigs.json([
            "inbounds": [[
                "protocol": "vmess", "port": Int(port), "listen": "127.0.0.1",
                "settings": ["users": [user.id]],
                "streamSettings": ["transport": "tcp", "transportSettings": ["headerSettings": header]],
            ]],
            "outbounds": [["protocol": "freedom"]],
        ])
        let vmessd = try startVMessd(config: config, port: port)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                         streamSettings: stream(Self.clientHeader, server: false))
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(Self.bulkSize), label: "v2ray → vmessd (v5 config) tcp http header 4 MiB echo")
        assertRunning(vmessd.process, v2ray.process)
    }

    /// Xray's client (the PyPI xray-core build) with the same disguise.
    func testXrayClientToVMessd() throws {
        let python = try XrayClient.requirePython()
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(
            port: port, user: user, streamSettings: stream(Self.serverHeader, server: true)), port: port)
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let base = XrayClient.config(dokodemoPort: dokodemo, targetPort: echo.port, socksPort: socks, serverPort: port, user: user)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(base.utf8)) as? [String: Any])
        var outbounds = try XCTUnwrap(object["outbounds"] as? [[String: Any]])
        outbounds[0]["streamSettings"] = stream(Self.clientHeader, server: false)
        object["outbounds"] = outbounds
        let config = try writeFile("xray-client.json", TestConfigs.json(object))
        let script = try writeFile("xray-runner.py", XrayClient.runner)
        let xray = try launch("client-xray", python, [script, config])
        try waitUntilListening(xray, port: socks)
        try echoRoundTrip(port: dokodemo, payload: randomData(Self.bulkSize), label: "xray → vmessd tcp http header 4 MiB echo")
        assertRunning(vmessd.process, xray)
    }

    // MARK: - vmessd client → v2ray / vmessd

    func testVMessdClientToV2Ray() throws { try vmessdClient(server: .v2ray, tls: false) }
    func testVMessdClientToV2RayTLS() throws { try vmessdClient(server: .v2ray, tls: true) }
    func testVMessdClientToVMessd() throws { try vmessdClient(server: .vmessd, tls: false) }
    func testVMessdClientToVMessdTLS() throws { try vmessdClient(server: .vmessd, tls: true) }

    private enum Server { case v2ray, vmessd }

    /// The server of `kind` on `config` (v4 JSON), listening on `port`; `file`: the v2ray config's name.
    private func start(_ kind: Server, config: String, port: UInt16, file: String) throws -> ManagedProcess {
        switch kind {
        case .v2ray:
            let process = try launch("server-v2ray", v2rayPath, ["-config", try writeFile(file, config)])
            try waitUntilListening(process, port: port)
            return process
        case .vmessd:
            return try startVMessd(config: config, port: port).process
        }
    }

    private func vmessdClient(server: Server, tls: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let certificate = tls ? try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"]) : nil
        let port = try FreePort.tcp()
        let config = TransportConfigs.serverV4(port: port, user: user,
                                               streamSettings: stream(Self.serverHeader, tls: certificate, server: true))
        let serverProcess = try start(server, config: config, port: port, file: "server-v2ray.json")
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: port, user: user)
        setup.streamSettings = stream(Self.clientHeader, tls: certificate, server: false)
        let client = try startVMessdClient(setup)
        let label = "vmessd → \(server) tcp http header\(tls ? "+tls" : "")"
        try echoThroughSOCKS(client, targetPort: echo.port, bulk: Self.bulkSize, shortConnections: 5, label: label)
        assertRunning(serverProcess, client.process, file: file, line: line)
    }

    // MARK: - raw sockets

    /// A wrong path: `HTTP/1.1 404 Not Found`, then the close, and not one byte more, whatever VMess
    /// bytes came behind the head. The reference server does the same (checked first, so a difference
    /// in the harness shows as such).
    func testWrongPathGets404AndNoVMess() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        for server in [Server.v2ray, .vmessd] {
            let port = try FreePort.tcp()
            let config = TransportConfigs.serverV4(port: port, user: user, streamSettings: stream(Self.serverHeader, server: true))
            let process = try start(server, config: config, port: port, file: "server-v2ray-404.json")
            let session = try TestVMessSession(uuid: user.id, targetPort: echo.port)
            let vmess = try session.opening(Array("hello".utf8))
            for (label, path) in [("wrong path", "/wrong"), ("prefix of a path", "/vid"), ("path with a suffix", "/vmess/x")] {
                let request = Array("GET \(path) HTTP/1.1\r\nHost: cdn1.test\r\n\r\n".utf8) + vmess
                let (head, rest) = try exchange(port: port, request, label: "\(server) \(label)")
                XCTAssertTrue(head.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(server) \(label): \(head)")
                XCTAssertTrue(head.contains("\r\nConnection: close\r\n") && head.contains("\r\nContent-Length: 0\r\n"), "\(server) \(label): \(head)")
                XCTAssertEqual(rest, [], "\(server) \(label): bytes after the 404")
            }
            assertRunning(process)
        }
    }

    /// A good head followed by bytes that are not VMess: the server drains them like any probe and, at
    /// the close, answers V2Ray's `400 Bad Request` (its Conn.Close writes one when nothing was
    /// answered yet). Same from the reference server and from vmessd.
    func testGoodHeadThenNotVMessGets400AtTheClose() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        for server in [Server.v2ray, .vmessd] {
            let port = try FreePort.tcp()
            let config = TransportConfigs.serverV4(port: port, user: user, streamSettings: stream(Self.serverHeader, server: true))
            let process = try start(server, config: config, port: port, file: "server-v2ray-400.json")
            let fd = try Sock.connect(port: port)
            defer { close(fd) }
            Sock.setTimeouts(fd, seconds: 0.25)
            let deadline = Date().addingTimeInterval(15)
            let request = Array("GET /vmess HTTP/1.1\r\nHost: cdn1.test\r\n\r\n".utf8) + Array(randomData(200))
            try request.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "\(server): head + noise") }
            Glibc.shutdown(fd, Int32(SHUT_WR))
            var answer = Data()
            while true {
                let r = try Sock.read(fd, count: 4096, deadline: deadline, what: "\(server): answer until the close")
                answer += r.data
                if r.eof { break }
            }
            let text = String(decoding: answer, as: UTF8.self)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"), "\(server): \(text.debugDescription)")
            XCTAssertTrue(text.hasSuffix("\r\n\r\n"), "\(server): bytes after the 400: \(text.debugDescription)")
            assertRunning(process)
        }
    }

    /// The client's head and its VMess request in ONE write: the server keeps every byte behind the head,
    /// answers its response head first, then the VMess response, 4 MiB through and back.
    func testHeadAndVMessInOneWrite() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let port = try FreePort.tcp()
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user,
                                                                       streamSettings: stream(Self.serverHeader, server: true)), port: port)
        let payload = Array(randomData(Self.bulkSize))
        let session = try TestVMessSession(uuid: user.id, targetPort: echo.port)
        let first = 8000
        let head = "GET /vmess?x=1 HTTP/1.1\r\nHost: cdn1.test\r\nConnection: keep-alive\r\n\r\n"
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(Self.transferTimeout)
        let oneWrite = Array(head.utf8) + (try session.opening(Array(payload[0..<first])))
        try oneWrite.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: "head + VMess in one write") }
        let (response, rest) = try readHTTPHead(fd, deadline: deadline)
        XCTAssertTrue(response.hasPrefix("HTTP/1.1 200 OK\r\n"), response)
        XCTAssertTrue(response.contains("\r\nServer: nginx/1.24.0\r\n") && response.contains("\r\nDate: "), response)
        try runVMessEcho(fd: fd, session: session, payload: payload, sentAlready: first, initialWire: rest,
                         wrap: { $0 }, unwrap: { $0 }, timeout: Self.transferTimeout, label: "tcp http header pipelined 4 MiB")
        assertRunning(vmessd.process)
    }

    /// Sends `request`, reads the HTTP head that comes back and everything after it until the close.
    private func exchange(port: UInt16, _ request: [UInt8], label: String) throws -> (head: String, rest: [UInt8]) {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(10)
        try request.withUnsafeBytes { try Sock.writeAll(fd, $0, deadline: deadline, what: label) }
        let (head, first) = try readHTTPHead(fd, deadline: deadline)
        var rest = first
        while true {
            let r = try Sock.read(fd, count: 4096, deadline: deadline, what: "\(label): close after the answer")
            rest += r.data
            if r.eof { break }
        }
        return (head, rest)
    }
}
