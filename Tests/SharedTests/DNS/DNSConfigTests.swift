// The `dns` section in both formats: the model each spelling gives, hosts and server selection on it,
// and the errors (unknown keys, features vmessd does not have) with their exact text.

import Foundation
import XCTest

@testable import Shared

final class DNSConfigTests: XCTestCase {
    private var geodataDirectory = ""

    override func setUpWithError() throws {
        geodataDirectory = try GeoDataFixture.directory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: geodataDirectory)
    }

    private var locator: GeoDataLocator { GeoDataLocator(directories: [geodataDirectory]) }

    private func parse(_ text: String) throws -> DNSConfig {
        try XCTUnwrap(try ConfigParser.parse(text: text, sourceFile: "config.json", geodata: locator).dns)
    }

    private func assertError(_ text: String, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try ConfigParser.parse(text: text, sourceFile: "config.json", geodata: locator)
            XCTFail("expected an error", file: file, line: line)
        } catch let error as ConfigError {
            XCTAssertEqual(error.description, description, file: file, line: line)
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        }
    }

    private let v5Inbound = #""inbounds": [{"protocol": "vmess", "port": 1, "settings": {"users": ["6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"]}}]"#

    func testV4Servers() throws {
        let dns = try parse(#"""
            {"dns": {"servers": ["8.8.8.8", "localhost",
                                 {"address": "127.0.0.1", "port": 5353, "domains": ["domain:test", "geosite:test"],
                                  "expectIPs": ["127.0.0.0/8"], "skipFallback": true},
                                 {"address": "2001:db8::53", "expectIps": ["geoip:private"]}],
                     "queryStrategy": "UseIPv4", "disableCache": true, "disableFallbackIfMatch": true,
                     "tag": "dns-in", "domainMatcher": "mph"}}
            """#)
        XCTAssertEqual(dns.servers.map(\.address), [
            .udp(address: [8, 8, 8, 8], port: 53), .system, .udp(address: [127, 0, 0, 1], port: 5353),
            .udp(address: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 10) + [0, 0x53], port: 53),
        ])
        XCTAssertEqual(dns.servers[2].domains?.rootDomains, ["test", "example.com"])
        XCTAssertEqual(dns.servers[2].domains?.full, ["full.example.org"])
        XCTAssertEqual(dns.servers[2].expectIPs, [IPSet(cidrs: [CIDR(address: [127, 0, 0, 0], prefix: 8)])])
        XCTAssertTrue(dns.servers[2].skipFallback)
        XCTAssertEqual(dns.servers[3].expectIPs, [PrivateIPRanges.set])
        XCTAssertEqual(dns.servers[2].jsonPath, "dns.servers[2]")
        XCTAssertEqual(dns.queryStrategy, .useIPv4)
        XCTAssertTrue(dns.disableCache)
        XCTAssertFalse(dns.disableFallback)
        XCTAssertTrue(dns.disableFallbackIfMatch)
        XCTAssertEqual(dns.tag, "dns-in")
    }

    func testV4TCPServers() throws {
        let dns = try parse(#"{"dns": {"servers": ["tcp://1.1.1.1", "tcp+local://[2001:db8::1]:5353/", {"address": "TCP+LOCAL://9.9.9.9:853"}]}}"#)
        XCTAssertEqual(dns.servers.map(\.address), [
            .tcp(address: [1, 1, 1, 1], port: 53, routed: true),
            .tcp(address: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1], port: 5353, routed: false),
            .tcp(address: [9, 9, 9, 9], port: 853, routed: false),
        ])
    }

    /// DNS over HTTPS as V2Ray writes it: `https://` (routed) and `https+local://` (direct), host by IP
    /// address or name, port 443 unless given, the path as written ("/" when there is none).
    func testHTTPSServers() throws {
        let dns = try parse(#"""
            {"dns": {"servers": ["https://1.1.1.1/dns-query", "https+local://dns.google/resolve?ct=1",
                                 {"address": "HTTPS://[2001:db8::1]:8443", "domains": ["domain:test"]},
                                 "https+local://localhost:5443/dns-query"]}}
            """#)
        XCTAssertEqual(dns.servers.map(\.address), [
            .https(host: "1.1.1.1", port: 443, path: "/dns-query", routed: true),
            .https(host: "dns.google", port: 443, path: "/resolve?ct=1", routed: false),
            .https(host: "2001:db8::1", port: 8443, path: "/", routed: true),
            .https(host: "localhost", port: 5443, path: "/dns-query", routed: false),
        ])
        let v5 = try parse(#"{\#(v5Inbound), "dns": {"nameServer": [{"address": {"address": "https+local://223.5.5.5/dns-query"}}]}}"#)
        XCTAssertEqual(v5.servers.map(\.address), [.https(host: "223.5.5.5", port: 443, path: "/dns-query", routed: false)])
    }

    /// Through a proxy the TLS session has no peer IP address to check an IP-named server against.
    func testHTTPSServersByIPThroughAProxyAreRefused() throws {
        let outbounds = #""outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "blackhole", "tag": "proxy"}]"#
        XCTAssertNoThrow(try parse(#"{\#(outbounds), "dns": {"servers": ["https://1.1.1.1/dns-query"]}}"#))
        XCTAssertNoThrow(try parse(#"{\#(outbounds), "dns": {"servers": ["https://dns.google/dns-query", "https+local://1.1.1.1/dns-query"], "tag": "dns-in"}, "routing": {"rules": [{"inboundTag": ["dns-in"], "outboundTag": "proxy"}]}}"#))
        assertError(#"{\#(outbounds), "dns": {"servers": ["https://[2001:db8::1]/dns-query"], "tag": "dns-in"}, "routing": {"rules": [{"inboundTag": ["dns-in"], "outboundTag": "proxy"}]}}"#,
                    #"config.json: dns: DNS over HTTPS to an IP address ([2001:db8::1], dns.servers[0]) through outbound "proxy" is not supported by vmessd yet: name the server by its host name, or use https+local://"#)
    }

    func testV4HostsAndLookup() throws {
        let dns = try parse(#"""
            {"dns": {"hosts": {"Exact.Example": "192.0.2.1", "domain:sub.example": ["192.0.2.2", "2001:db8::2"],
                               "keyword:kw": "192.0.2.3", "alias.example": "exact.example",
                               "geosite:test": "192.0.2.4", "loop.example": "loop.example"}}}
            """#)
        let hosts = try DNSHosts(dns.hosts)
        func lookup(_ name: String, v4: Bool = true, v6: Bool = true) -> DNSHosts.Answer {
            hosts.lookup(DNSQuestion.normalise(Array(name.utf8))!, ipv4: v4, ipv6: v6)
        }
        XCTAssertEqual(lookup("exact.example"), .addresses([[192, 0, 2, 1]]))
        XCTAssertEqual(lookup("www.exact.example"), .none, "a plain key is the exact name")
        XCTAssertEqual(lookup("a.sub.example"), .addresses([[192, 0, 2, 2], [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [2]]))
        XCTAssertEqual(lookup("a.sub.example", v6: false), .addresses([[192, 0, 2, 2]]))
        XCTAssertEqual(lookup("exact.example", v4: false), .addresses([]), "known name, no address of that family")
        XCTAssertEqual(lookup("akwb.example"), .addresses([[192, 0, 2, 3]]))
        XCTAssertEqual(lookup("alias.example"), .addresses([[192, 0, 2, 1]]), "a domain value resolves that name")
        XCTAssertEqual(lookup("full.example.org"), .addresses([[192, 0, 2, 4]]))
        XCTAssertEqual(lookup("loop.example"), .replaced(Array("loop.example".utf8)), "replacements are bounded")
        XCTAssertEqual(lookup("other.example"), .none)
    }

    func testServerSelection() throws {
        let dns = try parse(#"""
            {"dns": {"servers": ["192.0.2.53",
                                 {"address": "192.0.2.54", "domains": ["domain:corp.net"]},
                                 {"address": "192.0.2.55", "domains": ["keyword:corp"], "skipFallback": true},
                                 {"address": "192.0.2.56", "queryStrategy": "UseIPv6"},
                                 "localhost"]}}
            """#)
        let selection = try DNSServerSelection(dns)
        func order(_ name: String) -> [Int] { selection.order(for: Array(name.utf8)) }
        XCTAssertEqual(order("www.corp.net"), [1, 2, 0, 3, 4])
        XCTAssertEqual(order("www.example.com"), [0, 1, 3, 4], "skipFallback servers only for their domains")
        XCTAssertEqual(order("printer"), [4, 0, 1, 3], "dotless names go to the system resolver first")
        XCTAssertEqual(selection.types(0, ipv4: true, ipv6: true), [.a, .aaaa])
        XCTAssertEqual(selection.types(3, ipv4: true, ipv6: true), [.aaaa])
        XCTAssertEqual(selection.types(3, ipv4: true, ipv6: false), [])

        var noFallback = dns
        noFallback.disableFallback = true
        XCTAssertEqual(try DNSServerSelection(noFallback).order(for: Array("www.example.com".utf8)), [0],
                       "nothing matched: the first server")
        var ifMatch = dns
        ifMatch.disableFallbackIfMatch = true
        XCTAssertEqual(try DNSServerSelection(ifMatch).order(for: Array("www.corp.net".utf8)), [1, 2])
        XCTAssertEqual(try DNSServerSelection(ifMatch).order(for: Array("www.example.com".utf8)), [0, 1, 3, 4])
    }

    func testExpectIPsFilter() throws {
        let dns = try parse(#"{"dns": {"servers": [{"address": "192.0.2.53", "expectIPs": ["10.0.0.0/8", "geoip:!private"]}, "192.0.2.54"]}}"#)
        let selection = try DNSServerSelection(dns)
        XCTAssertEqual(selection.accepted(0, [[10, 1, 1, 1], [192, 168, 1, 1], [8, 8, 8, 8]]), [[10, 1, 1, 1], [8, 8, 8, 8]])
        XCTAssertEqual(selection.accepted(1, [[192, 168, 1, 1]]), [[192, 168, 1, 1]])
    }

    func testV5() throws {
        let dns = try parse(#"""
            {\#(v5Inbound),
             "dns": {"nameServer": [{"address": {"address": "127.0.0.1", "port": 5353, "network": "UDP"},
                                     "prioritizedDomain": [{"type": "Subdomain", "domain": "test"}, {"domain": "x.example"}],
                                     "geoDomain": [{"code": "test"}],
                                     "geoip": [{"cidr": [{"ipAddr": "127.0.0.0", "prefix": 8}]}],
                                     "query_strategy": "USE_IP4", "originalRules": [{"rule": "domain:test", "size": 1}]},
                                    {"address": {"address": "localhost"}}],
                     "staticHosts": [{"type": "Full", "domain": "h.example", "ip": ["192.0.2.9"]},
                                     {"type": "Keyword", "domain": "alias", "proxiedDomain": "h.example"}],
                     "queryStrategy": "USE_IP", "cacheStrategy": "CacheDisabled", "fallbackStrategy": "DisabledIfAnyMatch",
                     "tag": "dns"}}
            """#)
        XCTAssertEqual(dns.servers.map(\.address), [.udp(address: [127, 0, 0, 1], port: 5353), .system])
        XCTAssertEqual(dns.servers[0].domains?.rootDomains, ["test", "example.com"])
        XCTAssertEqual(dns.servers[0].domains?.full, ["x.example", "full.example.org"])
        XCTAssertEqual(dns.servers[0].queryStrategy, .useIPv4)
        XCTAssertEqual(dns.servers[0].expectIPs, [IPSet(cidrs: [CIDR(address: [127, 0, 0, 0], prefix: 8)])])
        XCTAssertTrue(dns.disableCache)
        XCTAssertTrue(dns.disableFallbackIfMatch)
        let hosts = try DNSHosts(dns.hosts)
        XCTAssertEqual(hosts.lookup(Array("my-alias.example".utf8), ipv4: true, ipv6: true), .addresses([[192, 0, 2, 9]]))
    }

    func testErrors() {
        assertError(#"{"dns": {"servers": ["8.8.8.8"], "color": 1}}"#, #"config.json: dns.color: unknown key "color""#)
        assertError(#"{"dns": {"clientIp": "1.2.3.4"}}"#, #"config.json: dns.clientIp: "clientIp" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"fakedns": {}}}"#, #"config.json: dns.fakedns: "fakedns" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"servers": ["https://dns.google:99999/dns-query"]}}"#,
                    #"config.json: dns.servers[0]: expected a URL with a port 1-65535, got "https://dns.google:99999/dns-query""#)
        assertError(#"{"dns": {"servers": ["https://bad_host!/dns-query"]}}"#,
                    #"config.json: dns.servers[0]: expected an https:// URL with an IP address or a host name, got "https://bad_host!/dns-query""#)
        assertError(#"{"dns": {"servers": ["https://dns.google/dns query"]}}"#,
                    #"config.json: dns.servers[0]: expected an https:// URL whose path is printable ASCII without spaces or a fragment, got "https://dns.google/dns query""#)
        assertError(#"{"dns": {"servers": ["https://user@dns.google/dns-query"]}}"#,
                    #"config.json: dns.servers[0]: DNS server "https://user@dns.google/dns-query": a user in the URL is not supported"#)
        assertError(#"{"dns": {"servers": [{"address": "https+local://1.1.1.1/dns-query", "port": 8443}]}}"#,
                    #"config.json: dns.servers[0].port: an https:// server takes its port in the URL ("https://1.1.1.1:8443/dns-query")"#)
        assertError(#"{"dns": {"servers": ["quic+local://1.1.1.1"]}}"#,
                    #"config.json: dns.servers[0]: DNS server "quic+local://1.1.1.1": "quic+local" servers are not supported by vmessd yet"#)
        assertError(#"{"dns": {"servers": ["tcp://dns.google:53"]}}"#,
                    #"config.json: dns.servers[0]: DNS server "tcp://dns.google:53": a server given by name is not supported by vmessd yet (use its IP address)"#)
        assertError(#"{"dns": {"servers": ["tcp://1.1.1.1:0"]}}"#,
                    #"config.json: dns.servers[0]: expected a URL with a port 1-65535, got "tcp://1.1.1.1:0""#)
        assertError(#"{"dns": {"servers": [{"address": "tcp://1.1.1.1", "port": 5353}]}}"#,
                    #"config.json: dns.servers[0].port: a tcp:// server takes its port in the URL ("tcp://1.1.1.1:53")"#)
        assertError(#"{"dns": {"servers": ["fakedns"]}}"#, #"config.json: dns.servers[0]: "fakedns" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"servers": ["dns.google"]}}"#,
                    #"config.json: dns.servers[0]: DNS server "dns.google": a server given by name is not supported by vmessd yet (use its IP address)"#)
        assertError(#"{"dns": {"servers": [{"address": "1.1.1.1", "clientIp": "1.2.3.4"}]}}"#,
                    #"config.json: dns.servers[0].clientIp: "clientIp" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"servers": [{"address": "1.1.1.1", "timeoutMs": 500}]}}"#,
                    #"config.json: dns.servers[0].timeoutMs: "timeoutMs" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"serveStale": true}}"#, #"config.json: dns.serveStale: "serveStale" is not supported by vmessd yet"#)
        assertError(#"{"dns": {"servers": [{"address": "1.1.1.1", "expectIPs": [], "expectedIPs": []}]}}"#,
                    #"config.json: dns.servers[0].expectedIPs: expectIPs given twice (under two spellings)"#)
        assertError(#"{"dns": {"servers": [{"address": "1.1.1.1", "domain": []}]}}"#,
                    #"config.json: dns.servers[0].domain: unknown key "domain""#)
        assertError(#"{"dns": {"servers": [{"port": 53}]}}"#, #"config.json: dns.servers[0]: missing required key "address""#)
        assertError(#"{"dns": {"queryStrategy": "UseIPv5"}}"#,
                    #"config.json: dns.queryStrategy: expected one of UseIP, UseIPv4, UseIPv6, got "UseIPv5""#)
        assertError(#"{"dns": {"hosts": {"dotless:x": "1.2.3.4"}}}"#,
                    #"config.json: dns.hosts["dotless:x"]: "dotless:" patterns are not supported by vmessd yet"#)
        assertError(#"{"dns": {"hosts": {"a.example": []}}}"#, #"config.json: dns.hosts["a.example"]: hosts: an entry needs an address"#)
        assertError(#"{"dns": {"hosts": {"a.example": "not a name!"}}}"#,
                    #"config.json: dns.hosts["a.example"]: expected an IP address or a domain name, got "not a name!""#)
        assertError(#"{\#(v5Inbound), "dns": {"nameServer": [{"address": {"address": "1.1.1.1", "network": "TCP"}}]}}"#,
                    #"config.json: dns.nameServer[0].address.network: DNS over TCP servers are not supported by vmessd yet"#)
        assertError(#"{\#(v5Inbound), "dns": {"nameServer": [{"address": {"address": "1.1.1.1"}, "fakeDns": {}}]}}"#,
                    #"config.json: dns.nameServer[0].fakeDns: "fakeDns" is not supported by vmessd yet"#)
        assertError(#"{\#(v5Inbound), "dns": {"staticHosts": [{"domain": "a.example"}]}}"#,
                    #"config.json: dns.staticHosts[0]: a static host needs "ip" or "proxiedDomain""#)
    }

    func testDNSOutbound() throws {
        let v4 = try ConfigParser.parse(text: #"""
            {"outbounds": [{"protocol": "dns", "tag": "dns-out",
                            "settings": {"network": "tcp", "address": "1.1.1.1", "port": 53, "userLevel": 0}},
                           {"protocol": "dns"}]}
            """#, sourceFile: "config.json", geodata: locator)
        var expected = DNSOutboundSettings()
        expected.network = .tcp
        expected.address = "1.1.1.1"
        expected.port = 53
        XCTAssertEqual(v4.outbounds.map(\.settings), [.dns(expected), .dns(DNSOutboundSettings())])
        let v5 = try ConfigParser.parse(text: #"{\#(v5Inbound), "outbounds": [{"protocol": "dns", "settings": {"overrideResponseTtl": true, "responseTtl": 30}}]}"#,
                                        sourceFile: "config.json", geodata: locator)
        var ttl = DNSOutboundSettings()
        ttl.responseTTL = 30
        XCTAssertEqual(v5.outbounds.map(\.settings), [.dns(ttl)])
        assertError(#"{"outbounds": [{"protocol": "dns", "settings": {"network": "sctp"}}]}"#,
                    #"config.json: outbounds[0].settings.network: expected "tcp" or "udp", got "sctp""#)
        assertError(#"{"outbounds": [{"protocol": "dns", "settings": {"server": {}}}]}"#,
                    #"config.json: outbounds[0].settings.server: unknown key "server""#)
    }

    /// The resolver's queries are routed like V2Ray's; a dns outbound's address override is the one
    /// route it cannot follow.
    func testDNSQueriesRoutedToAnOverridingDNSOutboundAreRefused() throws {
        let outbounds = #""outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "dns", "tag": "dns-out", "settings": {"address": "1.1.1.1"}}, {"protocol": "dns", "tag": "plain-dns"}]"#
        XCTAssertNoThrow(try parse(#"{\#(outbounds), "dns": {"servers": ["8.8.8.8", "localhost"], "tag": "dns-in"}, "routing": {"rules": [{"inboundTag": ["dns-in"], "outboundTag": "plain-dns"}]}}"#))
        assertError(#"{\#(outbounds), "dns": {"servers": ["localhost", {"address": "2001:db8::53", "port": 5353}]}, "routing": {"rules": [{"network": "udp", "port": 5353, "outboundTag": "dns-out"}]}}"#,
                    #"config.json: dns: the DNS queries to [2001:db8::53]:5353 (dns.servers[1]) are routed to dns outbound "dns-out", whose address/port override vmessd does not apply to the built-in DNS's own queries: not supported by vmessd yet"#)
        // Each pick of a balancer counts.
        assertError(#"{\#(outbounds), "dns": {"servers": ["8.8.8.8"]}, "routing": {"balancers": [{"tag": "b", "selector": ["direct", "dns-out"]}], "rules": [{"network": "udp", "balancerTag": "b"}]}}"#,
                    #"config.json: dns: the DNS queries to 8.8.8.8:53 (dns.servers[0]) are routed to dns outbound "dns-out", whose address/port override vmessd does not apply to the built-in DNS's own queries: not supported by vmessd yet"#)
    }

    func testModelRoundTripsThroughCodable() throws {
        let config = try ConfigParser.parse(text: #"{"dns": {"servers": [{"address": "127.0.0.1", "domains": ["domain:test"], "expectIPs": ["10.0.0.0/8"]}, "localhost", "https://dns.example/q?x=1", "https+local://[::1]:8443", "tcp://1.1.1.1"], "hosts": {"a.example": "192.0.2.1", "b.example": "a.example"}}}"#,
                                            sourceFile: "config.json", geodata: locator)
        let decoded = try JSONDecoder().decode(Config.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(decoded, config)
    }
}
