// The vmess outbound over every stream transport: vmessd client → vmessd server for each of
// (tcp, ws, httpupgrade) × (none, tls), and vmessd client → the real v2ray server over ws, tls and
// ws+tls, with UDP through socks5 on top of ws+tls. 4 MiB each way, byte for byte.

import Foundation
import TestSupport
import XCTest

final class ClientTransportInteropTests: InteropTestCase {
    static let bulkSize = 4 * 1024 * 1024

    func testVMessdToVMessdTCPTLS() throws { try vmessdPair(network: "tcp", tls: true) }
    func testVMessdToVMessdWebSocket() throws { try vmessdPair(network: "ws", tls: false) }
    func testVMessdToVMessdWebSocketTLS() throws { try vmessdPair(network: "ws", tls: true) }
    func testVMessdToVMessdHTTPUpgrade() throws { try vmessdPair(network: "httpupgrade", tls: false) }
    func testVMessdToVMessdHTTPUpgradeTLS() throws { try vmessdPair(network: "httpupgrade", tls: true) }
    func testVMessdToVMessdTCP() throws { try vmessdPair(network: "tcp", tls: false) }

    func testV2RayServerWebSocket() throws { try v2rayServer(network: "ws", tls: false) }
    func testV2RayServerTLS() throws { try v2rayServer(network: "tcp", tls: true) }
    func testV2RayServerWebSocketTLSWithUDP() throws { try v2rayServer(network: "ws", tls: true, udp: true) }

    /// streamSettings for one side; `server` adds the certificate, the client trusts it by name.
    private func stream(network: String, tls: Bool, certificate: TestCertificate?, server: Bool) -> [String: Any] {
        var s: [String: Any] = ["network": network]
        switch network {
        case "ws": s["wsSettings"] = ["path": "/vmess-ws"]
        case "httpupgrade": s["httpupgradeSettings"] = ["path": "/vmess-up"]
        default: break
        }
        if tls, let certificate {
            certificate.secure(&s, server: server)
        }
        return s
    }

    private func vmessdPair(network: String, tls: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let certificate = tls ? try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"]) : nil
        let port = try FreePort.tcp()
        let server = try startVMessd(config: TransportConfigs.serverV4(port: port, user: user,
                                                                       streamSettings: stream(network: network, tls: tls, certificate: certificate, server: true)),
                                     port: port)
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: port, user: user)
        setup.streamSettings = stream(network: network, tls: tls, certificate: certificate, server: false)
        let client = try startVMessdClient(setup)
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize), label: "vmessd → vmessd \(network)\(tls ? "+tls" : "") 4 MiB echo")
        assertRunning(server.process, client.process, file: file, line: line)
    }

    private func v2rayServer(network: String, tls: Bool, udp: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let certificate = tls ? try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"]) : nil
        let port = try FreePort.tcp()
        let config = TransportConfigs.serverV4(port: port, user: user,
                                               streamSettings: stream(network: network, tls: tls, certificate: certificate, server: true))
        let path = try writeFile("server-v2ray.json", config)
        let serverProcess = try launch("server-v2ray", v2rayPath, ["-config", path])
        try waitUntilListening(serverProcess, port: port)
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: port, user: user)
        setup.streamSettings = stream(network: network, tls: tls, certificate: certificate, server: false)
        let client = try startVMessdClient(setup)
        let fd = try SOCKS5Client.connect(proxyPort: client.socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(Self.bulkSize), label: "vmessd → v2ray \(network)\(tls ? "+tls" : "") 4 MiB echo")

        if udp {
            let udpEcho = try makeUDPEchoServer()
            let association = try SOCKS5UDPAssociation(socksPort: client.socksPort)
            onTearDown { association.close() }
            for (index, size) in [1, 100, 1000, 1400, 512, 33].enumerated() {
                let payload = randomData(size)
                var echoed = false
                for _ in 1...3 where !echoed {
                    try association.send(payload, toPort: udpEcho.port)
                    let until = Date().addingTimeInterval(index == 0 ? 5 : 3)
                    while let reply = try association.receive(timeout: until.timeIntervalSinceNow) {
                        if reply.payload == payload { echoed = true; break }
                    }
                }
                XCTAssertTrue(echoed, "UDP datagram #\(index) (\(size) bytes) over \(network)+tls was not echoed", file: file, line: line)
            }
            association.close()  // a draining vmessd would otherwise wait for the control connection
        }
        assertRunning(serverProcess, client.process, file: file, line: line)
    }
}
