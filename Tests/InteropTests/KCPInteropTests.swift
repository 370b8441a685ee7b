// mKCP against the real v2ray 4.34 (Debian), both ways, with every packet header and with a seed,
// bytes echoed identical through the real binaries:
//
//   v2ray client ──kcp──▶ vmessd server ──freedom──▶ echo
//   vmessd client ──kcp──▶ v2ray server (and vmessd server) ──freedom──▶ echo
//
// and over a lossy link (5 % of the datagrams dropped each way, LossyUDPRelay between the peers):
// the transfer completes intact.

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class KCPInteropTests: InteropTestCase {
    static let bulkSize = 2 * 1024 * 1024

    /// kcpSettings as both sides write them (v4): a shorter TTI than V2Ray's default so that
    /// transfers on loopback take about a second, capacities near its defaults (larger windows only
    /// overrun a debug-build peer on a loaded machine).
    static func stream(header: String = "none", seed: String? = nil, tls certificate: TestCertificate? = nil,
                       server: Bool = false) -> [String: Any] {
        var kcp: [String: Any] = ["mtu": 1350, "tti": 20, "uplinkCapacity": 10, "downlinkCapacity": 20,
                                  "congestion": false, "readBufferSize": 2, "writeBufferSize": 2,
                                  "header": ["type": header]]
        if let seed { kcp["seed"] = seed }
        var s: [String: Any] = ["network": "kcp", "kcpSettings": kcp]
        if let certificate {
            certificate.secure(&s, server: server)
        }
        return s
    }

    // MARK: - v2ray client → vmessd

    func testV2RayClientToVMessd() throws {
        try v2rayClient(header: "none", seed: nil, size: Self.bulkSize, shortConnections: 5)
    }

    /// Every header type, each with and without a seed (the two securities).
    func testV2RayClientToVMessdHeadersAndSeed() throws {
        for (i, header) in ["srtp", "utp", "wechat-video", "dtls", "wireguard", "none"].enumerated() {
            try v2rayClient(header: header, seed: i % 2 == 0 ? "seed-\(header)" : nil, size: 256 * 1024, shortConnections: 1)
        }
    }

    /// TLS over mKCP, as V2Ray allows it.
    func testV2RayClientToVMessdTLS() throws {
        let certificate = try makeSelfSignedCertificate("proxy", dnsNames: ["proxy.test"])
        try v2rayClient(header: "wechat-video", seed: "tls-seed", size: 512 * 1024, shortConnections: 1, tls: certificate)
    }

    private func v2rayClient(header: String, seed: String?, size: Int, shortConnections: Int,
                             tls certificate: TestCertificate? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let port = try FreePort.udp()
        let label = "v2ray → vmessd kcp header \(header) seed \(seed != nil)\(certificate != nil ? " tls" : "")"
        let vmessd = try startVMessd(config: TransportConfigs.serverV4(
            port: port, user: user, streamSettings: Self.stream(header: header, seed: seed, tls: certificate, server: true)),
                                     port: port, name: "server-vmessd-\(header)", udp: true)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                         streamSettings: Self.stream(header: header, seed: seed, tls: certificate),
                                         name: "client-v2ray-\(header)")
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(size), label: "\(label) \(size) bytes")
        for i in 0..<shortConnections {
            try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(1000 + i), label: "\(label) short connection \(i)")
        }
        assertRunning(vmessd.process, v2ray.process, file: file, line: line)
        v2ray.process.terminate()
        vmessd.process.terminate()
    }

    // MARK: - vmessd client → v2ray / vmessd

    /// Each variant ends with a stop that waits for the v2ray server's terminate (it sends it from a
    /// 5 s ping timer once its side is done): a few seconds per variant, so two here and the
    /// remaining headers against vmessd.
    func testVMessdClientToV2Ray() throws {
        try vmessdClient(server: .v2ray, header: "none", seed: nil)
        try vmessdClient(server: .v2ray, header: "wechat-video", seed: "the seed")
    }

    func testVMessdClientToVMessd() throws {
        try vmessdClient(server: .vmessd, header: "srtp", seed: "s")
        try vmessdClient(server: .vmessd, header: "dtls", seed: nil)
    }

    private enum Server { case v2ray, vmessd }

    private func startServer(_ kind: Server, config: String, port: UInt16, name: String) throws -> ManagedProcess {
        switch kind {
        case .v2ray:
            let process = try launch(name, v2rayPath, ["-config", try writeFile("\(name).json", config)])
            guard process.waitForOutput(containing: "started", timeout: Self.startupTimeout) else {
                throw HarnessError("\(name) did not start (\(process.exitDescription))")
            }
            return process
        case .vmessd:
            return try startVMessd(config: config, port: port, name: name, udp: true).process
        }
    }

    /// vmessd ↔ vmessd moves 512 KiB: both ends are debug builds here, and on a loaded machine two
    /// CPU-starved event loops fall behind a full-window burst (see KCPSendingWindow's backoff).
    private func vmessdClient(server: Server, header: String, seed: String?, file: StaticString = #filePath, line: UInt = #line) throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let port = try FreePort.udp()
        let config = TransportConfigs.serverV4(port: port, user: user, streamSettings: Self.stream(header: header, seed: seed, server: true))
        let serverProcess = try startServer(server, config: config, port: port, name: "server-\(server)-\(header)")
        let echo = try makeEchoServer()
        var setup = VMessdClientSetup(serverPort: port, user: user)
        setup.streamSettings = Self.stream(header: header, seed: seed)
        let client = try startVMessdClient(setup, name: "client-vmessd-\(header)")
        let label = "vmessd → \(server) kcp header \(header) seed \(seed != nil)"
        // One short connection: each end waits for V2Ray's terminate, which its server sends from a
        // 1-5 s ping timer once its side is done, so more would only add seconds.
        try echoThroughSOCKS(client, targetPort: echo.port, bulk: server == .vmessd ? 512 * 1024 : Self.bulkSize,
                             shortConnections: 1, label: label)
        assertRunning(serverProcess, client.process, file: file, line: line)
        client.process.terminate()
        serverProcess.terminate()
    }

    // MARK: - v5 config

    /// The vmessd server written in v5 (transport "kcp", transportSettings as the protobuf message),
    /// the v2ray 4.34 client in v4.
    func testV2RayClientToVMessdV5Config() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let port = try FreePort.udp()
        let config = TestConfigs.json([
            "inbounds": [[
                "protocol": "vmess", "port": Int(port), "listen": "127.0.0.1",
                "settings": ["users": [user.id]],
                "streamSettings": ["transport": "kcp", "transportSettings": [
                    "mtu": ["value": 1350], "tti": ["value": 20], "uplink_capacity": ["value": 50],
                    "downlink_capacity": ["value": 100], "write_buffer": ["size": 2 * 1024 * 1024],
                    "header_config": ["@type": "v2ray.core.transport.internet.headers.utp.Config"],
                    "seed": ["seed": "v5 seed"],
                ]],
            ]],
            "outbounds": [["protocol": "freedom"]],
        ])
        let vmessd = try startVMessd(config: config, port: port, udp: true)
        let v2ray = try startV2RayClient(serverPort: port, user: user, targetPort: echo.port,
                                         streamSettings: Self.stream(header: "utp", seed: "v5 seed"))
        try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(512 * 1024), label: "v2ray → vmessd (v5 config) kcp utp+seed")
        assertRunning(vmessd.process, v2ray.process)
    }

    // MARK: - loss

    /// 5 % of the datagrams lost each way between the v2ray client and the vmessd server, and
    /// between the vmessd client and the v2ray server: the transfers complete byte for byte.
    func testLossyLinkBothWays() throws {
        let size = 1024 * 1024
        do {
            let user = VMessTestUser(security: "aes-128-gcm")
            let echo = try makeEchoServer()
            let port = try FreePort.udp()
            let vmessd = try startVMessd(config: TransportConfigs.serverV4(
                port: port, user: user, streamSettings: Self.stream(header: "srtp", seed: "lossy", server: true)),
                                         port: port, name: "server-vmessd-lossy", udp: true)
            let relay = try LossyUDPRelay(serverPort: port, lossPercent: 5)
            onTearDown { relay.stop() }
            let v2ray = try startV2RayClient(serverPort: relay.port, user: user, targetPort: echo.port,
                                             streamSettings: Self.stream(header: "srtp", seed: "lossy"), name: "client-v2ray-lossy")
            try echoRoundTrip(port: v2ray.dokodemoPort, payload: randomData(size), label: "v2ray → 5% loss → vmessd 1 MiB echo")
            XCTAssertGreaterThan(relay.dropped, 0, "the relay dropped nothing")
            assertRunning(vmessd.process, v2ray.process)
        }
        do {
            let user = VMessTestUser(security: "aes-128-gcm")
            let echo = try makeEchoServer()
            let port = try FreePort.udp()
            let server = try startServer(.v2ray, config: TransportConfigs.serverV4(
                port: port, user: user, streamSettings: Self.stream(header: "none", server: true)), port: port, name: "server-v2ray-lossy")
            let relay = try LossyUDPRelay(serverPort: port, lossPercent: 5)
            onTearDown { relay.stop() }
            var setup = VMessdClientSetup(serverPort: relay.port, user: user)
            setup.streamSettings = Self.stream(header: "none")
            let client = try startVMessdClient(setup, name: "client-vmessd-lossy")
            try echoThroughSOCKS(client, targetPort: echo.port, bulk: size, shortConnections: 0, label: "vmessd → 5% loss → v2ray")
            XCTAssertGreaterThan(relay.dropped, 0, "the relay dropped nothing")
            assertRunning(server, client.process)
        }
    }
}
