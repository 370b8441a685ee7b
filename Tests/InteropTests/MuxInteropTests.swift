// Mux.Cool on the vmessd server (vmess-protocol.md §10): the real V2Ray 4.34 client with
// `mux.enabled` (16 parallel flows over its multiplexed connections, and UDP as a mux session), and
// the real Xray client, whose UDP travels as XUDP (Command 3, session 0, per-packet addresses).
//
//   test ──▶ v2ray client (mux) ──vmess cmd 3──▶ vmessd ──freedom──▶ echo targets
//   test ──▶ Xray client (XUDP)  ──vmess cmd 3──▶ vmessd ──freedom──▶ UDP echo

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class MuxInteropTests: InteropTestCase {
    /// The v2ray client with Mux.Cool on, pointed at the server under test.
    private func startMuxClient(server: RunningServer, user: VMessTestUser, targetPort: UInt16) throws -> RunningClient {
        let dokodemo = try FreePort.tcp()
        var socks = try FreePort.tcp()
        while socks == dokodemo { socks = try FreePort.tcp() }
        let base = TestConfigs.v2rayClient(dokodemoPort: dokodemo, targetPort: targetPort, socksPort: socks,
                                           serverPort: server.port, user: user)
        var object = try JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
        var outbounds = object["outbounds"] as! [[String: Any]]
        outbounds[0]["mux"] = ["enabled": true, "concurrency": 8]
        object["outbounds"] = outbounds
        let path = try writeFile("client-mux.json", TestConfigs.json(object))
        let process = try launch("client-v2ray-mux", v2rayPath, ["-config", path])
        try waitUntilListening(process, port: socks)
        return RunningClient(dokodemoPort: dokodemo, socksPort: socks, process: process)
    }

    func testV2RayMuxClient16ParallelFlows() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let server = try startServer(users: [user])
        let client = try startMuxClient(server: server, user: user, targetPort: echo.port)
        let size = 512 * 1024
        var tasks: [BackgroundTask<Void>] = []
        for i in 0..<16 {
            tasks.append(BackgroundTask("flow-\(i)") { [self] in
                try echoThenClose(port: client.dokodemoPort, payload: randomData(size), label: "mux flow \(i)")
            })
        }
        let failures = failures(of: tasks)
        XCTAssertEqual(failures, [], "\(server.kind) with a mux client")
        // A second round on the same (now warm) mux connections.
        try echoThenClose(port: client.dokodemoPort, payload: randomData(4 * 1024 * 1024), label: "mux 4 MiB")
        assertRunning(server.process, client.process)
    }

    func testV2RayMuxClientUDPSession() throws {
        let user = VMessTestUser(security: "chacha20-poly1305")
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(users: [user])
        let client = try startMuxClient(server: server, user: user, targetPort: udpEcho.port)
        try udpRoundTrips(socksPort: client.socksPort, echoPort: udpEcho.port, count: 30, label: "\(server.kind) mux UDP")
        assertRunning(server.process, client.process)
    }

    // MARK: - Xray

    func testXrayClientTCPAndXUDP() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let echo = try makeEchoServer()
        let udpEcho = try makeUDPEchoServer()
        let server = try startServer(users: [user])
        let tcpClient = try startXray(server: server, user: user, targetPort: echo.port)
        try echoRoundTrip(port: tcpClient.dokodemoPort, payload: randomData(4 * 1024 * 1024), label: "xray 4 MiB echo")
        // Xray sends UDP to ports other than 53/443 as XUDP over Mux.Cool.
        try udpRoundTrips(socksPort: tcpClient.socksPort, echoPort: udpEcho.port, count: 30, label: "xray XUDP")
        assertRunning(server.process, tcpClient.process)
    }

    /// `count` datagrams of varied sizes through a SOCKS5 UDP association, each echoed identically.
    private func udpRoundTrips(socksPort: UInt16, echoPort: UInt16, count: Int, label: String) throws {
        let association = try SOCKS5UDPAssociation(socksPort: socksPort)
        defer { association.close() }
        for i in 0..<count {
            let payload = randomData(1 + (i * 97) % 1300)
            var matched = false
            for _ in 1...2 where !matched {
                try association.send(payload, toPort: echoPort)
                let until = Date().addingTimeInterval(i == 0 ? 5 : 3)
                while let reply = try association.receive(timeout: until.timeIntervalSinceNow) {
                    if reply.payload == payload {
                        XCTAssertEqual(reply.fromPort, echoPort, "\(label) #\(i): wrong source port")
                        matched = true
                        break
                    }
                }
            }
            if !matched { throw HarnessError("\(label): datagram #\(i) (\(payload.count) bytes) was not echoed") }
        }
    }
}
