// The built-in DNS with the real binaries: the V2Ray 4.34 client through vmessd to a name only a
// dnsmasq started by the test can resolve (`*.test` → 127.0.0.1). Each test also shows the same
// request failing or going elsewhere without the dns section's help, so it cannot pass by accident
// (the system resolver knows no `.test` names).
//
//   v2ray client (dokodemo-door to echo.test:PORT) ──VMess──▶ vmessd ──▶ freedom UseIPv4 ─▶ 127.0.0.1:PORT
//                                                              └─ dns.servers: dnsmasq on 127.0.0.1:N

import Foundation
import NIOCore
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

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

    /// A DNS over HTTPS server (`https+local://`, by name): dnsdist in front of dnsmasq, its
    /// certificate trusted through SSL_CERT_FILE as V2Ray's would be. Without that trust the same
    /// config resolves nothing, so the name can only have come through the verified DoH server.
    func testFreedomUseIPv4ResolvesThroughADNSOverHTTPSServer() throws {
        let dnsmasq = try startDnsmasq()
        let (certificate, key) = try SelfSignedCertificate.make(names: "DNS:localhost,IP:127.0.0.1", name: "doh", in: workDir)
        let doh = try DNSDist(backend: dnsmasq.port, certificate: certificate.path, key: key.path, logDirectory: workDir)
        onTearDown { doh.stop() }
        let echo = try makeEchoServer()
        let user = VMessTestUser("doh@example.com")
        let extra: [String: Any] = [
            "outbounds": [["protocol": "freedom", "settings": ["domainStrategy": "UseIPv4"]]],
            "dns": ["servers": ["https+local://localhost:\(doh.port)/dns-query"]],
        ]
        let server = try startVMessd(users: [user], workers: 1, environment: ["SSL_CERT_FILE": certificate.path], extra: extra)
        XCTAssertTrue(try roundTrip(server, user, "echo.test", echo.port), "echo.test resolved over DoH")
        XCTAssertTrue(try roundTrip(server, user, "again.test", echo.port))
        XCTAssertEqual(echo.connectionCount, 2)

        let untrusted = try startVMessd(users: [user], workers: 1, extra: extra)
        XCTAssertFalse(try roundTrip(untrusted, user, "echo.test", echo.port), "an unverified server is not believed")
        XCTAssertEqual(echo.connectionCount, 2)
        // The failure is named once at the default level (warning), not once per question.
        XCTAssertFalse(try roundTrip(untrusted, user, "again.test", echo.port))
        let warnings = untrusted.process.output().split(separator: "\n").filter { $0.contains("DNS server failed;") }
        XCTAssertEqual(warnings.count, 1, untrusted.process.output())
        XCTAssertTrue(warnings.first?.contains("server=dns.servers[0]") == true && warnings.first?.contains("CERTIFICATE_VERIFY_FAILED") == true,
                      "\(warnings)")
    }

    /// A DoH server that speaks HTTP/1.1 only (nginx without http2, as many self-hosted fronts are,
    /// in front of dnsdist): it chooses http/1.1 by ALPN, and vmessd asks it over HTTP/1.1 from then
    /// on (V2Ray's Go client does the same), one connection per question.
    func testDNSOverHTTPSServerThatSpeaksOnlyHTTP1() throws {
        let dnsmasq = try startDnsmasq()
        let (certificate, key) = try SelfSignedCertificate.make(names: "DNS:localhost,IP:127.0.0.1", name: "doh", in: workDir)
        let doh = try DNSDist(backend: dnsmasq.port, certificate: certificate.path, key: key.path, logDirectory: workDir)
        onTearDown { doh.stop() }
        let front = try startNginx { port in
            """
            listen 127.0.0.1:\(port) ssl;
            ssl_certificate \(certificate.path);
            ssl_certificate_key \(key.path);
            location /dns-query {
                proxy_pass https://127.0.0.1:\(doh.port);
                proxy_http_version 1.1;
            }
            """
        }
        let echo = try makeEchoServer()
        let user = VMessTestUser("doh-h1@example.com")
        let server = try startVMessd(users: [user], workers: 1, environment: ["SSL_CERT_FILE": certificate.path], extra: [
            "outbounds": [["protocol": "freedom", "settings": ["domainStrategy": "UseIPv4"]]],
            "dns": ["servers": ["https+local://127.0.0.1:\(front)/dns-query"]],
        ])
        XCTAssertTrue(try roundTrip(server, user, "echo.test", echo.port), "echo.test resolved over DoH on HTTP/1.1")
        XCTAssertTrue(try roundTrip(server, user, "again.test", echo.port))
        XCTAssertEqual(echo.connectionCount, 2)
        XCTAssertFalse(server.process.output().contains("DNS server failed"), server.process.output())
    }

    /// `https://` by name, routed: under IPOnDemand the server's own name cannot be resolved first (that
    /// would ask the resolver itself), so its domain rule decides; here it picks a freedom redirected
    /// to the DoH server, which carries the TLS session (a socket pair through that outbound). Were
    /// the questions sent directly to localhost:443, nothing would answer there.
    func testRoutedDNSOverHTTPSFollowsDomainRulesThroughAnOutbound() throws {
        let dnsmasq = try startDnsmasq()
        let (certificate, key) = try SelfSignedCertificate.make(names: "DNS:localhost", name: "doh", in: workDir)
        let doh = try DNSDist(backend: dnsmasq.port, certificate: certificate.path, key: key.path, logDirectory: workDir)
        onTearDown { doh.stop() }
        let echo = try makeEchoServer()
        let user = VMessTestUser("doh-routed@example.com")
        let server = try startVMessd(users: [user], workers: 1, environment: ["SSL_CERT_FILE": certificate.path], extra: [
            "outbounds": [
                ["protocol": "freedom", "tag": "direct", "settings": ["domainStrategy": "UseIPv4"]],
                ["protocol": "freedom", "tag": "to-doh", "settings": ["redirect": "127.0.0.1:\(doh.port)"]],
            ],
            "dns": ["servers": ["https://localhost/dns-query"], "tag": "dns-in"],
            "routing": ["domainStrategy": "IPOnDemand", "rules": [
                ["type": "field", "ip": ["192.0.2.0/24"], "outboundTag": "direct"],
                ["type": "field", "inboundTag": ["dns-in"], "domain": ["full:localhost"], "outboundTag": "to-doh"],
            ]],
        ])
        XCTAssertTrue(try roundTrip(server, user, "echo.test", echo.port), "echo.test resolved over DoH through to-doh")
        XCTAssertEqual(echo.connectionCount, 1)
    }

    /// UDP too: the client's datagrams to echo.test:PORT (PORT being dnsmasq's, so dnsmasq itself is the
    /// UDP peer that answers) reach 127.0.0.1 only because freedom resolved echo.test through dnsmasq.
    func testFreedomUseIPv4ResolvesUDPDestinationsThroughTheConfiguredServer() throws {
        let dnsmasq = try startDnsmasq()
        let user = VMessTestUser("dns-udp@example.com")
        let server = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [["protocol": "freedom", "settings": ["domainStrategy": "UseIPv4"]]],
            "dns": dnsSection(dnsmasq),
        ])
        let udpPort = try startDokodemoClient(server: server, user: user, address: "echo.test", port: dnsmasq.port, network: "udp")
        let question = DNSQuestion("probe.test", type: .a)!
        XCTAssertEqual(try addresses(try udpExchange(question.query(id: 5), port: udpPort), question), [[127, 0, 0, 1]])
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
                    ["protocol": "freedom", "tag": "dns-direct"],
                ],
                "routing": [
                    "domainStrategy": "IPIfNonMatch",
                    "rules": [
                        // The resolver's own queries are routed too (inbound tag dns.tag): without this rule
                        // those to dnsmasq (127.0.0.1) would take the next one, to an echo server.
                        ["type": "field", "inboundTag": ["dns-in"], "outboundTag": "dns-direct"],
                        ["type": "field", "ip": ["127.0.0.1/32"], "outboundTag": "matched"],
                    ],
                ],
            ]
            if dns {
                var section = dnsSection(dnsmasq)
                section["tag"] = "dns-in"
                extra["dns"] = section
            }
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

    /// The resolver's own queries are routed like V2Ray's: here no rule matches the DNS tag, so they
    /// take the first outbound, a vmess proxy (a second vmessd), and reach dnsmasq from there. The
    /// client's own request is routed to a local freedom (UseIPv4), which needs that resolution.
    /// With the proxy gone the same request fails: the queries went nowhere else.
    func testResolverQueriesFollowRoutingThroughAProxy() throws {
        let dnsmasq = try startDnsmasq()
        let echo = try makeEchoServer()
        let relayUser = VMessTestUser("relay@example.com")
        let relay = try startVMessd(users: [relayUser], workers: 1)
        let user = VMessTestUser("routed-dns@example.com")
        var dns = dnsSection(dnsmasq)
        dns["tag"] = "dns-in"
        let server = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [
                ["protocol": "vmess", "tag": "proxy", "settings": ["vnext": [[
                    "address": "127.0.0.1", "port": Int(relay.port), "users": [relayUser.clientJSON],
                ]]]],
                ["protocol": "freedom", "tag": "direct", "settings": ["domainStrategy": "UseIPv4"]],
            ],
            "routing": ["rules": [["type": "field", "inboundTag": ["vmess-in"], "outboundTag": "direct"]]],
            "dns": dns,
        ])
        XCTAssertTrue(try roundTrip(server, user, "echo.test", echo.port), "resolved through the proxy")
        XCTAssertEqual(echo.connectionCount, 1)
        try eventually("the relay saw the DNS traffic") { try stats(relay).accepted >= 1 }

        relay.process.terminate(grace: 2)
        XCTAssertFalse(try roundTrip(server, user, "echo.test", echo.port), "no proxy, no resolution (TTL 0: no cache)")
        XCTAssertEqual(echo.connectionCount, 1)
    }

    // MARK: the dns outbound

    /// The v2ray client forwards UDP and TCP DNS traffic (dokodemo-door to dnsmasq's address) through
    /// vmessd, whose first outbound is `dns`: A/AAAA are answered by the built-in resolver (its `hosts`
    /// entry wins over what dnsmasq would say; other names through the `dns` servers); a TXT query is
    /// forwarded to where the client sent it and dnsmasq's answer comes back.
    func testDNSOutboundAnswersAddressQueriesAndForwardsTheRest() throws {
        let dnsmasq = try DNSMasq(["--address=/test/127.0.0.1", "--txt-record=txt.test,forwarded"], logDirectory: workDir)
        onTearDown { dnsmasq.stop() }
        let user = VMessTestUser("dns-outbound@example.com")
        var dns = dnsSection(dnsmasq)
        dns["hosts"] = ["hosts.test": "192.0.2.77"]
        let server = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [["protocol": "dns", "tag": "dns-out"], ["protocol": "freedom", "tag": "direct"]],
            "dns": dns,
        ])
        let udpPort = try startDokodemoClient(server: server, user: user, address: "127.0.0.1", port: dnsmasq.port, network: "udp")
        let tcpPort = try startDokodemoClient(server: server, user: user, address: "127.0.0.1", port: dnsmasq.port, network: "tcp")

        let hosts = DNSQuestion("hosts.test", type: .a)!
        XCTAssertEqual(try addresses(try udpExchange(hosts.query(id: 1), port: udpPort), hosts), [[192, 0, 2, 77]])
        let echo = DNSQuestion("echo.test", type: .a)!
        XCTAssertEqual(try addresses(try udpExchange(echo.query(id: 2), port: udpPort), echo), [[127, 0, 0, 1]])
        XCTAssertEqual(try addresses(try tcpExchange(hosts.query(id: 3), port: tcpPort), hosts), [[192, 0, 2, 77]])

        var txt = DNSQuestion("txt.test", type: .a)!.query(id: 4)
        txt[txt.count - 3] = 16  // QTYPE TXT
        let udpTXT = try udpExchange(txt, port: udpPort)
        XCTAssertTrue(udpTXT.count > 12 && udpTXT[0..<2] == [0, 4] && Data(udpTXT).range(of: Data("forwarded".utf8)) != nil,
                      "dnsmasq's TXT answer, forwarded: \(udpTXT)")
        let tcpTXT = try tcpExchange(txt, port: tcpPort)
        XCTAssertTrue(Data(tcpTXT).range(of: Data("forwarded".utf8)) != nil, "over TCP too: \(tcpTXT)")
    }

    /// The reference client with one dokodemo-door inbound (`network` udp or tcp) to address:port
    /// through `server`; returns the inbound's port once the client runs (for UDP, once a TCP probe
    /// inbound on another port accepts: v2ray opens its inbounds together).
    private func startDokodemoClient(server: VMessdServer, user: VMessTestUser, address: String, port: UInt16,
                                     network: String) throws -> UInt16 {
        let listenPort = try network == "udp" ? FreePort.udp() : FreePort.tcp()
        let probePort = try FreePort.tcp()
        var inbounds: [[String: Any]] = [["port": Int(listenPort), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                                           "settings": ["address": address, "port": Int(port), "network": network]]]
        if network == "udp" {
            inbounds.append(["port": Int(probePort), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                             "settings": ["address": "127.0.0.1", "port": 9, "network": "tcp"]])
        }
        let name = nextName("v2ray-dokodemo")
        let path = try writeFile("\(name).json", Self.json([
            "log": ["loglevel": "warning"],
            "inbounds": inbounds,
            "outbounds": [["protocol": "vmess", "settings": ["vnext": [[
                "address": "127.0.0.1", "port": Int(server.port), "users": [user.clientJSON],
            ]]]]],
        ]))
        let client = try launch(name, try Tool.v2ray(), ["-config", path])
        try waitForTCPPort(network == "udp" ? probePort : listenPort, timeout: Self.startupTimeout, stillAlive: { client.isRunning })
        return listenPort
    }

    /// The usual server setup: a rule sends UDP to port 53 (here dnsmasq's port) to the dns outbound,
    /// everything else to the first outbound; the client's datagrams are routed one by one.
    func testDNSOutboundChosenByARoutingRule() throws {
        let dnsmasq = try startDnsmasq()
        let user = VMessTestUser("dns-rule@example.com")
        var dns = dnsSection(dnsmasq)
        dns["hosts"] = ["hosts.test": "192.0.2.78"]
        let server = try startVMessd(users: [user], workers: 1, extra: [
            "outbounds": [["protocol": "freedom", "tag": "direct"], ["protocol": "dns", "tag": "dns-out"]],
            "routing": ["rules": [["type": "field", "network": "udp", "port": Int(dnsmasq.port), "inboundTag": ["vmess-in"],
                                   "outboundTag": "dns-out"]]],
            "dns": dns,
        ])
        let udpPort = try startDokodemoClient(server: server, user: user, address: "127.0.0.1", port: dnsmasq.port, network: "udp")
        let hosts = DNSQuestion("hosts.test", type: .a)!
        XCTAssertEqual(try addresses(try udpExchange(hosts.query(id: 8), port: udpPort), hosts), [[192, 0, 2, 78]],
                       "answered by the built-in resolver's hosts, not forwarded to dnsmasq (which says 127.0.0.1)")
    }

    private func addresses(_ reply: [UInt8], _ question: DNSQuestion) throws -> [[UInt8]] {
        guard case .response(let response) = try DNSResponseParser.parse(ByteBuffer(bytes: reply), question: question) else {
            throw HarnessError("truncated reply")
        }
        return response.addresses
    }

    /// One datagram to 127.0.0.1:port and the first reply (retried: the first datagram of a new
    /// dokodemo-door session may race the client's connect to vmessd).
    private func udpExchange(_ query: [UInt8], port: UInt16) throws -> [UInt8] {
        let fd = try Sock.socket(Sock.datagramType)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 2)
        var address = Sock.loopback(port: port)
        var reply = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<5 {
            let sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, query, query.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard sent == query.count else { throw HarnessError("sendto failed: \(errno)") }
            let n = recv(fd, &reply, reply.count, 0)
            if n > 0 { return Array(reply[..<n]) }
        }
        throw HarnessError("no UDP reply from 127.0.0.1:\(port)")
    }

    /// One length-prefixed message on a new TCP connection and the first whole reply.
    private func tcpExchange(_ query: [UInt8], port: UInt16) throws -> [UInt8] {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        Sock.setTimeouts(fd, seconds: 0.25)
        let deadline = Date().addingTimeInterval(10)
        try Sock.writeAll(fd, Data([UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query), deadline: deadline)
        let prefix = try Sock.read(fd, count: 2, deadline: deadline, what: "reply length").data
        guard prefix.count == 2 else { throw HarnessError("no TCP reply") }
        let length = Int(prefix[prefix.startIndex]) << 8 | Int(prefix[prefix.startIndex + 1])
        let body = try Sock.read(fd, count: length, deadline: deadline, what: "reply").data
        guard body.count == length else { throw HarnessError("TCP reply cut at \(body.count) of \(length)") }
        return Array(body)
    }
}
