// The built-in DNS with the real binaries: the V2Ray 4.34 client through vmessd to a name only a
// dnsmasq started by the test can resolve (`*.test` → 127.0.0.1). Each test also shows the same
// request failing or going elsewhere without the dns section's help, so it cannot pass by accident
// (the system resolver knows no `.test` names).
//
//   v2ray client (dokodemo-door to echo.test:PORT) ──VMess──▶ vmessd ──▶ freedom UseIPv4 ─▶ 127.0.0.1:PORT
//                                                              └─ dns.servers: dnsmasq on 127.0.0.1:N

import Foundation
import TestSupport
import XCTest

final class DNSTests: EndToEndTestCase {
    private func startDnsmasq() throws -> DNSMasq {
        let dnsmasq = try DNSMasq(["--address=/test/127.0.0.1"], logDirectory: workDir)
        onTearDown { dnsmasq.stop() }
        return dnsmasq
    }

    private func dnsSection(_ dnsmasq: DNSMasq) -> [String: Any] {
        ["servers": [["address": "127.0.0.1", "port": Int(dnsmasq.port)]]]
    }

    private func roundTrip(_ server: VMessdServer, _ user: VMessTestUser, _ address: String, _ port: UInt16) throws -> Bool {
        let client = try startClient(serverPort: server.port, user: user, targetPort: port, targetAddress: address)
        defer { client.process.terminate(grace: 1) }
        do {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: address, timeout: 10)
            return true
        } catch {
            return false
        }
    }

    func testFreedomUseIPv4ResolvesThroughTheConfiguredServer() throws {
        let dnsmasq = try startDnsmasq()
        let echo = try makeEchoServer()
        let user = VMessTestUser("dns@example.com")
        let server = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [["protocol": "freedom", "settings": ["domainStrategy": "UseIPv4"]]],
            "dns": dnsSection(dnsmasq),
        ])
        XCTAssertTrue(try roundTrip(server, user, "echo.test", echo.port), "echo.test resolved by dnsmasq")
        XCTAssertEqual(echo.connectionCount, 1)

        // AsIs uses the system resolver (as V2Ray's freedom does), which has never heard of echo.test.
        let asIs = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [["protocol": "freedom", "settings": ["domainStrategy": "AsIs"]]],
            "dns": dnsSection(dnsmasq),
        ])
        XCTAssertFalse(try roundTrip(asIs, user, "echo.test", echo.port))
        XCTAssertEqual(echo.connectionCount, 1)
    }

    func testRoutingIPIfNonMatchResolvesThroughTheConfiguredServer() throws {
        let dnsmasq = try startDnsmasq()
        let direct = try makeEchoServer()
        let matched = try makeEchoServer()
        let user = VMessTestUser("dns-routing@example.com")
        func extra(dns: Bool) -> [String: Any] {
            var extra: [String: Any] = [
                // Both redirect to loopback echo servers, so only routing resolves the name.
                "outbounds": [
                    ["protocol": "freedom", "tag": "direct", "settings": ["redirect": "127.0.0.1:\(direct.port)"]],
                    ["protocol": "freedom", "tag": "matched", "settings": ["redirect": "127.0.0.1:\(matched.port)"]],
                ],
                "routing": [
                    "domainStrategy": "IPIfNonMatch",
                    "rules": [["type": "field", "ip": ["127.0.0.1/32"], "outboundTag": "matched"]],
                ],
            ]
            if dns { extra["dns"] = dnsSection(dnsmasq) }
            return extra
        }
        let server = try startVMessd(users: [user], workers: 1, extra: extra(dns: true))
        XCTAssertTrue(try roundTrip(server, user, "echo.test", 443))
        XCTAssertEqual(matched.connectionCount, 1, "echo.test resolved to 127.0.0.1, so the ip rule matched")
        XCTAssertTrue(try roundTrip(server, user, "unknown.example", 443))
        XCTAssertEqual(direct.connectionCount, 1, "a name dnsmasq does not know matches no ip rule")

        let systemOnly = try startVMessd(users: [user], workers: 1, extra: extra(dns: false))
        XCTAssertTrue(try roundTrip(systemOnly, user, "echo.test", 443))
        XCTAssertEqual(direct.connectionCount, 2, "without the dns section echo.test resolves to nothing")
        XCTAssertEqual(matched.connectionCount, 1)
    }
}
