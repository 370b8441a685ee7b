// `proxySettings` (issue 8): vmessd as a client whose vmess outbound is dialed through another vmess
// outbound, with two real V2Ray 4.34 servers: the first hop (plain TCP) carries the connection to
// the second (WebSocket, `transportLayer: true`), which reaches the echo target. 1 MiB each way,
// byte for byte, and the first hop's own log shows it carried a connection to the second.
//
//   SOCKS5 ─▶ vmessd client ── VMess (to hop 2, over WebSocket) inside VMess (to hop 1) ─▶ v2ray hop 1
//            ─▶ v2ray hop 2 (ws) ─▶ echo

import Foundation
import TestSupport
import XCTest

final class ProxyChainInteropTests: InteropTestCase {
    func testAVMessOutboundDialedThroughAnotherReachesTheTargetThroughBothHops() throws {
        let first = VMessTestUser(security: "aes-128-gcm")
        let second = VMessTestUser(security: "chacha20-poly1305")
        let ws: [String: Any] = ["network": "ws", "wsSettings": ["path": "/hop2"]]
        let (hop1, firstPort) = try startHop("hop1", user: first, stream: ["network": "tcp"])
        let (hop2, secondPort) = try startHop("hop2", user: second, stream: ws)
        let echo = try makeEchoServer()

        let socksPort = try FreePort.tcp()
        let config = socksClient(port: socksPort, outbounds: [
            ["protocol": "vmess", "tag": "hop2",
             "settings": ["vnext": [["address": "127.0.0.1", "port": Int(secondPort), "users": [second.json]]]],
             "streamSettings": ws,
             "proxySettings": ["tag": "hop1", "transportLayer": true]],
            ["protocol": "vmess", "tag": "hop1",
             "settings": ["vnext": [["address": "127.0.0.1", "port": Int(firstPort), "users": [first.json]]]]],
        ])
        let client = try startVMessd(config: config, port: socksPort, name: "client-vmessd")
        let fd = try SOCKS5Client.connect(proxyPort: socksPort, targetPort: echo.port)
        try echoRoundTrip(fd: fd, payload: randomData(1024 * 1024), label: "through hop1 and hop2, 1 MiB echo")
        XCTAssertEqual(echo.connectionCount, 1)
        // Hop 1 was asked for hop 2's address (not the target's): the chain, not a shortcut.
        XCTAssertTrue(hop1.waitForOutput(containing: "tcp:127.0.0.1:\(secondPort)", timeout: 5), "hop 1 did not carry the connection to hop 2")
        XCTAssertFalse(hop1.output().contains("tcp:127.0.0.1:\(echo.port)"), "hop 1 went to the target itself")
        XCTAssertTrue(hop2.waitForOutput(containing: "tcp:127.0.0.1:\(echo.port)", timeout: 5), "hop 2 did not reach the target")
        assertRunning(client.process, hop1, hop2)
    }

    /// A freedom outbound with proxySettings: its requests, after `redirect`, are carried by the
    /// proxy outbound (here a vmess outbound to the real v2ray server), which is asked for the
    /// redirected address.
    func testAFreedomOutboundDialedThroughAVMessOutbound() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let (hop, port) = try startHop("hop", user: user, stream: ["network": "tcp"])
        let echo = try makeEchoServer()
        let socksPort = try FreePort.tcp()
        let config = socksClient(port: socksPort, outbounds: [
            ["protocol": "freedom", "tag": "out", "settings": ["redirect": "127.0.0.1:\(echo.port)"],
             "proxySettings": ["tag": "hop"]],
            ["protocol": "vmess", "tag": "hop",
             "settings": ["vnext": [["address": "127.0.0.1", "port": Int(port), "users": [user.json]]]]],
        ])
        let client = try startVMessd(config: config, port: socksPort, name: "client-vmessd")
        let fd = try SOCKS5Client.connect(proxyPort: socksPort, targetPort: 9)  // redirected to the echo target
        try echoRoundTrip(fd: fd, payload: randomData(256 * 1024), label: "freedom through vmess, 256 KiB echo")
        XCTAssertTrue(hop.waitForOutput(containing: "tcp:127.0.0.1:\(echo.port)", timeout: 5), "the hop was not asked for the redirected target")
        assertRunning(client.process, hop)
    }

    /// A real v2ray 4.34 VMess server for `user` on a free port, with `stream` settings.
    private func startHop(_ name: String, user: VMessTestUser, stream: [String: Any]) throws -> (ManagedProcess, UInt16) {
        let port = try FreePort.tcp()
        let hop = try launch("\(name)-v2ray", v2rayPath, ["-config", try writeFile("\(name).json",
            TransportConfigs.serverV4(port: port, user: user, streamSettings: stream))])
        try waitUntilListening(hop, port: port)
        return (hop, port)
    }

    /// vmessd as a client: a SOCKS5 inbound on `port` and these outbounds (the first takes everything).
    private func socksClient(port: UInt16, outbounds: [[String: Any]]) -> String {
        TestConfigs.json([
            "log": ["loglevel": "debug"],
            "inbounds": [["port": Int(port), "listen": "127.0.0.1", "protocol": "socks", "settings": ["auth": "noauth"]]],
            "outbounds": outbounds,
        ])
    }
}
