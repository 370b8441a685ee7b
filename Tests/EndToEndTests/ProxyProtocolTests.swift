// The PROXY protocol on inbounds (issue 9), against real peers:
//
//   v2ray client ─sendThrough 127.0.0.5─▶ haproxy (send-proxy-v2, source 127.0.0.3) ─▶ vmessd ─▶ echo
//
// vmessd's peer is haproxy at 127.0.0.3 while the header carries 127.0.0.5: a routing `source` rule
// on 127.0.0.5 and the access log show which one vmessd took for the client. Hand-made headers from
// raw sockets carry non-loopback sources (198.51.100.7) to a dokodemo-door inbound: routing by the
// carried source, the per-source limit keyed on it, and bad headers that close only their own
// connection while a good one keeps working.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ProxyProtocolTests: EndToEndTestCase {
    func testHAProxySendProxyV2CarriesTheClientAddressToRoutingAndTheAccessLog() throws {
        try throughHAProxy(server: ["network": "tcp", "tcpSettings": ["acceptProxyProtocol": true]],
                           client: ["network": "tcp"])
    }

    /// haproxy passes TLS through (mode tcp): the PROXY header comes before the ClientHello, then
    /// WebSocket inside TLS; the v5-style place of the flag (sockopt) this time.
    func testHAProxyInFrontOfWebSocketOverTLS() throws {
        let (cert, key) = try makeCertificate()
        try throughHAProxy(server: ["network": "ws", "wsSettings": ["path": "/pp"], "security": "tls",
                                    "tlsSettings": ["certificates": [["certificateFile": cert, "keyFile": key]]],
                                    "sockopt": ["acceptProxyProtocol": true]],
                           client: ["network": "ws", "wsSettings": ["path": "/pp"], "security": "tls",
                                    "tlsSettings": ["serverName": "vmessd.test", "allowInsecure": true]])
    }

    /// gRPC over h2c: the PROXY header comes before HTTP/2's connection preface. The flag sits in
    /// sockopt, where V2Ray and Xray put it for transports whose own settings have no such key. The
    /// client is V2Ray 4.45.2 (Debian's 4.34 has no gRPC).
    func testHAProxyInFrontOfGRPC() throws {
        let client = try V2RayRuntime.require(copyInto: workDir)
        try throughHAProxy(server: ["network": "grpc", "grpcSettings": ["serviceName": "pp"],
                                    "sockopt": ["acceptProxyProtocol": true]],
                           client: ["network": "grpc", "grpcSettings": ["serviceName": "pp"]], clientBinary: client)
    }

    /// The h2 transport, over TLS (ALPN h2) as the reference requires: header, ClientHello, then
    /// HTTP/2. V2Ray 4.45.2 as the client: 4.34's h2 dialer ignores `sendThrough` (its connections
    /// leave from 127.0.0.1, which the header then faithfully carries).
    func testHAProxyInFrontOfH2OverTLS() throws {
        let client = try V2RayRuntime.require(copyInto: workDir)
        let (cert, key) = try makeCertificate()
        try throughHAProxy(server: ["network": "h2", "httpSettings": ["path": "/pp", "host": ["vmessd.test"]],
                                    "security": "tls",
                                    "tlsSettings": ["certificates": [["certificateFile": cert, "keyFile": key]]],
                                    "sockopt": ["acceptProxyProtocol": true]],
                           client: ["network": "h2", "httpSettings": ["path": "/pp", "host": ["vmessd.test"]],
                                    "security": "tls",
                                    "tlsSettings": ["serverName": "vmessd.test", "allowInsecure": true]],
                           clientBinary: client)
    }

    /// A self-signed certificate for vmessd.test in the work directory: (certificate, key) paths.
    func makeCertificate() throws -> (String, String) {
        let dir = workDir.path
        let check = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                 "-keyout", "\(dir)/k.pem", "-out", "\(dir)/c.pem", "-days", "2",
                                                 "-subj", "/CN=vmessd.test", "-addext", "subjectAltName=DNS:vmessd.test"])
        guard check.status == 0 else { throw XCTSkip("openssl req failed: \(check.stderr)") }
        return ("\(dir)/c.pem", "\(dir)/k.pem")
    }

    func throughHAProxy(server serverStream: [String: Any], client clientStream: [String: Any],
                        clientBinary: String? = nil) throws {
        let carried = try makeEchoServer()
        let other = try makeEchoServer()
        let user = VMessTestUser("pp@example.com")
        let port = try FreePort.tcp()
        let accessLog = workDir.appendingPathComponent("access.log").path
        let config = Self.json([
            "log": ["loglevel": "info", "access": accessLog],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in",
                "settings": ["clients": [user.serverJSON]],
                "streamSettings": serverStream,
            ]],
            "outbounds": [
                ["protocol": "freedom", "tag": "other", "settings": ["redirect": "127.0.0.1:\(other.port)"]],
                ["protocol": "freedom", "tag": "carried", "settings": ["redirect": "127.0.0.1:\(carried.port)"]],
            ],
            "routing": ["rules": [["type": "field", "source": ["127.0.0.5"], "outboundTag": "carried"]]],
        ])
        _ = try startVMessd(config: config, port: port, workers: 1)
        let haproxyPort = try startHAProxy(server: "127.0.0.1:\(port) send-proxy-v2 source 127.0.0.3")

        // The reference client, leaving from 127.0.0.5, through haproxy.
        let v2ray = try clientBinary ?? Tool.v2ray()
        let clientPort = try FreePort.tcp()
        let name = nextName("v2ray")
        let clientConfig = Self.json([
            "log": ["loglevel": "warning"],
            "inbounds": [[
                "port": Int(clientPort), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                "settings": ["address": "93.184.216.34", "port": 80, "network": "tcp"],
            ]],
            "outbounds": [["protocol": "vmess", "sendThrough": "127.0.0.5", "settings": ["vnext": [[
                "address": "127.0.0.1", "port": Int(haproxyPort), "users": [user.clientJSON],
            ]]], "streamSettings": clientStream]],
        ])
        let path = try writeFile("\(name).json", clientConfig)
        let process = try launch(name, v2ray, ["-config", path])
        try waitForTCPPort(clientPort, timeout: Self.startupTimeout, stillAlive: { process.isRunning })

        let payload = randomData(256 * 1024)
        for i in 0..<3 {
            try ShortConnectionLoad.roundTrip(port: clientPort, payload: payload, label: "through haproxy \(i)", timeout: 20)
        }
        XCTAssertEqual(carried.connectionCount, 3, "routed by the address the PROXY header carried (127.0.0.5)")
        XCTAssertEqual(other.connectionCount, 0, "not by haproxy's own address (127.0.0.3)")
        try eventually("the access log names 127.0.0.5") {
            let log = (try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? ""
            return log.contains("127.0.0.5:") && !log.contains("127.0.0.3:")
        }
    }

    // MARK: hand-made headers

    static func v1(_ source: String) -> [UInt8] { Array("PROXY TCP4 \(source) 203.0.113.1 40000 443\r\n".utf8) }

    static func v2(_ source: [UInt8], command: UInt8 = 0x21) -> [UInt8] {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let body = source + [203, 0, 113, 1, 0x9C, 0x40, 0x01, 0xBB]
        return signature + [command, 0x11, 0, UInt8(body.count)] + body
    }

    /// A connection to `port` that sent `header` and then `payload`: the echo, or nil if vmessd closed it.
    func exchange(_ port: UInt16, _ header: [UInt8], _ payload: Data, keepOpen: Bool = false) throws -> (fd: Int32, echo: Data?) {
        let fd = try Sock.connect(port: port)
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(10)
        do {
            try Sock.writeAll(fd, Data(header) + payload, deadline: deadline, what: "header and payload")
        } catch {
            close(fd)  // reset by a quick close: as good as EOF
            return (-1, nil)
        }
        let r: (data: Data, eof: Bool) = (try? Sock.read(fd, count: payload.count, deadline: deadline, what: "echo")) ?? (Data(), true)
        let echo = r.data.count == payload.count ? r.data : nil
        if !keepOpen || echo == nil {
            close(fd)
            return (-1, echo)
        }
        return (fd, echo)
    }

    func startDokodemo(echoes carried: EchoServer, _ other: EchoServer, perSource: Int) throws -> UInt16 {
        let port = try FreePort.tcp()
        let config = Self.json([
            "log": ["loglevel": "info"],
            "vmessd": ["limits": ["connectionsPerSource": perSource]],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "dokodemo-door", "tag": "doko",
                "settings": ["address": "93.184.216.34", "port": 80, "network": "tcp"],
                "streamSettings": ["sockopt": ["acceptProxyProtocol": true]],
            ]],
            "outbounds": [
                ["protocol": "freedom", "tag": "other", "settings": ["redirect": "127.0.0.1:\(other.port)"]],
                ["protocol": "freedom", "tag": "carried", "settings": ["redirect": "127.0.0.1:\(carried.port)"]],
            ],
            "routing": ["rules": [["type": "field", "source": ["198.51.100.0/24"], "outboundTag": "carried"]]],
        ])
        // One worker: the per-source limit is per worker.
        _ = try startVMessd(config: config, port: port, workers: 1)
        return port
    }

    func testHandMadeHeadersRouteByTheCarriedSource() throws {
        let carried = try makeEchoServer()
        let other = try makeEchoServer()
        let port = try startDokodemo(echoes: carried, other, perSource: 100)
        let payload = Data("hello through a PROXY header".utf8)

        XCTAssertEqual(try exchange(port, Self.v1("198.51.100.7"), payload).echo, payload)
        XCTAssertEqual(try exchange(port, Self.v2([198, 51, 100, 9]), payload).echo, payload)
        XCTAssertEqual(carried.connectionCount, 2, "v1 and v2 sources in 198.51.100.0/24")
        XCTAssertEqual(try exchange(port, Self.v2([203, 0, 113, 9]), payload).echo, payload)
        // LOCAL (a balancer's health check): the real peer, 127.0.0.1.
        XCTAssertEqual(try exchange(port, Self.v2([198, 51, 100, 7], command: 0x20), payload).echo, payload)
        XCTAssertEqual(other.connectionCount, 2)
        XCTAssertEqual(carried.connectionCount, 2)
    }

    func testBadHeadersCloseOnlyTheirConnectionAndTheLimitIsKeyedOnTheCarriedSource() throws {
        let carried = try makeEchoServer()
        let other = try makeEchoServer()
        let port = try startDokodemo(echoes: carried, other, perSource: 2)
        let payload = Data("still here".utf8)

        // Two connections from 198.51.100.7 held open: the limit for that source.
        let a = try exchange(port, Self.v1("198.51.100.7"), payload, keepOpen: true)
        let b = try exchange(port, Self.v2([198, 51, 100, 7]), payload, keepOpen: true)
        defer { close(a.fd); close(b.fd) }
        XCTAssertEqual(a.echo, payload)
        XCTAssertEqual(b.echo, payload)
        // A third from the same carried source is refused, one from another is not, though all three
        // come from 127.0.0.1.
        XCTAssertNil(try exchange(port, Self.v1("198.51.100.7"), payload).echo, "over the per-source limit")
        XCTAssertEqual(try exchange(port, Self.v1("198.51.100.8"), payload).echo, payload)

        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let bad: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
            Array("PROXY TCP4 198.51.100.7 203.0.113.1 40000\r\n".utf8),
            Array("PROXY TCP6 198.51.100.7 203.0.113.1 40000 443\r\n".utf8),
            Array("PROXY UNKNOWN ".utf8) + [UInt8](repeating: 0x41, count: 300),
            signature + [0x31, 0x11, 0x00, 0x0C] + [UInt8](repeating: 1, count: 12),  // version 3
            signature + [0x21, 0x51, 0x00, 0x0C] + [UInt8](repeating: 1, count: 12),  // family 5
            signature + [0x21, 0x11, 0x00, 0x08] + [UInt8](repeating: 1, count: 8),   // short addresses
            signature + [0x21, 0x11, 0xFF, 0xFF],                                      // 64 KiB promised
            signature + [0x21, 0x11, 0x00, 0x0F] + [UInt8](repeating: 1, count: 12) + [0x04, 0x00, 0x09],  // TLV past len
        ]
        let echoedBefore = carried.connectionCount + other.connectionCount
        for header in bad {
            XCTAssertNil(try exchange(port, header, payload).echo, "\(header.prefix(24))")
        }
        XCTAssertEqual(carried.connectionCount + other.connectionCount, echoedBefore, "no bad header reached an outbound")

        // The held connections still work.
        for (i, fd) in [a.fd, b.fd].enumerated() {
            let deadline = Date().addingTimeInterval(10)
            try Sock.writeAll(fd, payload, deadline: deadline, what: "held \(i)")
            XCTAssertEqual(try Sock.read(fd, count: payload.count, deadline: deadline, what: "held \(i)").data, payload)
        }
    }

    func testSilentPeerIsClosedAtTheHeaderDeadline() throws {
        let carried = try makeEchoServer()
        let other = try makeEchoServer()
        let port = try startDokodemo(echoes: carried, other, perSource: 100)
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let start = Date()
        try Sock.writeAll(fd, Data("PROXY TCP4".utf8), deadline: start.addingTimeInterval(5))
        let r = try Sock.read(fd, count: 1, deadline: start.addingTimeInterval(15), what: "close at the deadline")
        XCTAssertTrue(r.eof)
        let waited = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(waited, 4, "closed at the 5 s deadline, not before")
        XCTAssertLessThan(waited, 10)
    }
}
