// UDP datagrams of every size through vmessd with the real clients (issue 7): a datagram is carried
// whole or dropped whole (and counted), never cut, and an oversized one ends nothing but itself.
//
//   test ──SOCKS5 UDP──▶ client (sing-box plain / sing-box XUDP / Xray XUDP / V2Ray 4.34)
//        ──VMess──▶ vmessd ──freedom──▶ UDP target (digest of each request, or a reply of a requested size)
//
// Each client has limits of its own, measured here (see ClientLimits in Sources/Shared/Config): what
// its SOCKS inbound takes from the application and what it delivers back whole. The tests check every
// size up to those limits both ways, and vmessd's own limit on datagrams toward the client.

import Foundation
import Shared
import TestSupport
import XCTest

final class UDPSizeInteropTests: InteropTestCase {
    /// The target's answers: "SIZE" + BE32(n) + seed asks for an n-byte reply of the pattern
    /// seed, seed+1, …; anything else is answered with BE32(length) + SHA-256 of what arrived.
    static func respond(_ request: [UInt8]) -> [UInt8] {
        if request.count == 9, request[0..<4].elementsEqual("SIZE".utf8) {
            let n = request[4..<8].reduce(0) { $0 << 8 | Int($1) }
            let seed = request[8]
            return (0..<n).map { seed &+ UInt8(truncatingIfNeeded: $0) }
        }
        let n = UInt32(request.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + Digest.sha256(request)
    }

    /// The request for an n-byte reply.
    static func ask(_ n: Int, seed: UInt8) -> [UInt8] {
        Array("SIZE".utf8) + [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), seed]
    }

    enum Outcome: Equatable { case whole, lost, cut(Int) }

    /// Sends `payload`, waits for the answer `expected` (twice, UDP being lossy by contract).
    private func exchange(_ association: SOCKS5UDPAssociation, to port: UInt16, _ payload: [UInt8], expect expected: [UInt8],
                          timeout: TimeInterval = 3) throws -> Outcome {
        var outcome = Outcome.lost
        for _ in 1...2 {
            try association.send(Data(payload), toPort: port)
            let until = Date().addingTimeInterval(timeout)
            while let reply = try association.receive(timeout: max(0.01, until.timeIntervalSinceNow)) {
                if [UInt8](reply.payload) == expected { return .whole }
                outcome = .cut(reply.payload.count)
            }
        }
        return outcome
    }

    /// Requests of `requests` sizes (the target reports a digest) and replies of `replies` sizes.
    private func checkSizes(socksPort: UInt16, targetPort: UInt16, requests: [Int], replies: [Int], label: String) throws {
        let association = try SOCKS5UDPAssociation(socksPort: socksPort)
        defer { association.close() }
        for n in requests {
            let payload = SecureRandom.bytes(n)
            let outcome = try exchange(association, to: targetPort, payload, expect: Self.respond(payload))
            XCTAssertEqual(outcome, .whole, "\(label): a \(n)-byte datagram to the target")
        }
        for (i, n) in replies.enumerated() {
            let ask = Self.ask(n, seed: UInt8(i * 37 % 256))
            let outcome = try exchange(association, to: targetPort, ask, expect: Self.respond(ask))
            XCTAssertEqual(outcome, .whole, "\(label): a \(n)-byte reply to the client")
        }
    }

    /// A reply over vmessd's limit toward the client is dropped whole and counted; the session (for
    /// XUDP: the whole mux connection) carries on.
    private func checkOversizedReplyIsDropped(server: RunningServer, socksPort: UInt16, targetPort: UInt16, limit: Int,
                                              label: String) throws {
        let association = try SOCKS5UDPAssociation(socksPort: socksPort)
        defer { association.close() }
        let small = Self.ask(100, seed: 1)
        XCTAssertEqual(try exchange(association, to: targetPort, small, expect: Self.respond(small)), .whole, label)
        let n = limit + 1
        let big = Self.ask(n, seed: 2)
        XCTAssertEqual(try exchange(association, to: targetPort, big, expect: Self.respond(big), timeout: 1), .lost,
                       "\(label): a \(n)-byte reply is dropped, never cut")
        XCTAssertEqual(try exchange(association, to: targetPort, small, expect: Self.respond(small)), .whole,
                       "\(label): the session carries on after the drop")
        if let control = server.control {
            let out = try runTool(try VMessdBinaries.vmessd(), ["ctl", "--control", control, "--json", "stats"]).stdout
            XCTAssertTrue(out.contains("\"dropped_udp_too_large\""), "\(label): counted: \(out)")
        }
    }


    /// sing-box with the given packet encoding: every size both ways up to the limits, then a reply
    /// over vmessd's limit. sing-box sends up to 15,000 bytes as one datagram (it splits larger ones
    /// itself, before vmessd sees them).
    private func checkSingBox(_ encoding: SingBoxClient.PacketEncoding, security: String) throws {
        let user = VMessTestUser(security: security)
        let target = try makeUDPEchoServer(respond: Self.respond)
        let server = try startServer(users: [user])
        let client = try startSingBox(server: server, user: user, packetEncoding: encoding)
        let label = "sing-box \(encoding)"
        try checkSizes(socksPort: client.socksPort, targetPort: target.port, requests: [1, 1400, 2049, 4096, 8192, 15_000],
                       replies: [1, 2049, 4096, ClientLimits.defaultUDPToClient], label: label)
        try checkOversizedReplyIsDropped(server: server, socksPort: client.socksPort, targetPort: target.port,
                                         limit: ClientLimits.defaultUDPToClient, label: label)
        assertRunning(server.process, client.process)
    }

    func testSingBoxPlainUDPCarriesLargeDatagramsWhole() throws { try checkSingBox(.plain, security: "aes-128-gcm") }

    func testSingBoxXUDPCarriesLargeDatagramsWhole() throws { try checkSingBox(.xudp, security: "chacha20-poly1305") }

    /// With `udpDatagramToClient` raised to sing-box's own limit, 16,000-byte replies arrive whole.
    func testSingBoxWithARaisedClientLimit() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("a vmessd setting") }
        let user = VMessTestUser(security: "aes-128-gcm")
        let target = try makeUDPEchoServer(respond: Self.respond)
        let server = try startServer(users: [user], daemon: ["limits": ["udpDatagramToClient": 16_000]])
        for encoding in [SingBoxClient.PacketEncoding.plain, .xudp] {
            let client = try startSingBox(server: server, user: user, packetEncoding: encoding)
            try checkSizes(socksPort: client.socksPort, targetPort: target.port, requests: [], replies: [12_000, 16_000],
                           label: "sing-box \(encoding) with the limit at 16000")
        }
    }

    func testXrayXUDPCarriesLargeDatagramsWhole() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let target = try makeUDPEchoServer(respond: Self.respond)
        let server = try startServer(users: [user])
        let client = try startXray(server: server, user: user, targetPort: target.port)
        // Xray's socks inbound takes at most about 8 KB from the application and delivers 8182 back.
        try checkSizes(socksPort: client.socksPort, targetPort: target.port, requests: [1, 1400, 2049, 4096],
                       replies: [1, 2049, 4096, ClientLimits.defaultUDPToClient], label: "Xray XUDP")
        try checkOversizedReplyIsDropped(server: server, socksPort: client.socksPort, targetPort: target.port,
                                         limit: ClientLimits.defaultUDPToClient, label: "Xray XUDP")
        assertRunning(server.process, client.process)
    }

    /// V2Ray 4.34 sends at most 1966 bytes in one chunk (its writer keeps chunks within 2048 bytes
    /// with up to 63 bytes of padding, and drops larger datagrams) and its socks inbound delivers at
    /// most 2038 back (a 2048-byte buffer with the 10-byte SOCKS header): everything up to there is
    /// whole through vmessd.
    func testV2RayPlainUDPUpToItsOwnLimit() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let target = try makeUDPEchoServer(respond: Self.respond)
        let server = try startServer(users: [user])
        let client = try startClient(server: server, user: user, targetPort: target.port)
        try checkSizes(socksPort: client.socksPort, targetPort: target.port, requests: [1, 1400, 1966],
                       replies: [1, 1400, 2038], label: "V2Ray 4.34")
        assertRunning(server.process, client.process)
    }
}
