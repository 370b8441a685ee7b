// `routing` (v4) and `router` (v5): the model each spelling gives, geodata expansion from synthetic
// files, and every error with its exact text (file, JSON path, reason).

import Foundation
import XCTest

@testable import Shared

final class RoutingConfigTests: XCTestCase {
    private var geodataDirectory = ""

    override func setUpWithError() throws {
        geodataDirectory = try GeoDataFixture.directory(extra: [
            "custom.dat": GeoDataFixture.site("MINE", [GeoDataFixture.domain(3, "mine.example")]),
            "customip.dat": GeoDataFixture.ip("MINE", [([203, 0, 113, 0], 24)]),
            "broken.dat": [0x0a, 0x7f, 0x01],
        ])
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: geodataDirectory)
    }

    private var locator: GeoDataLocator { GeoDataLocator(directories: ["/nonexistent-vmessd", geodataDirectory]) }

    private let outbounds = #"""
        "outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "blackhole", "tag": "block"},
                      {"protocol": "freedom", "tag": "proxy-1"}, {"protocol": "freedom", "tag": "proxy-2"}]
        """#

    private func v4(_ routing: String) -> String { "{\(outbounds), \"routing\": \(routing)}" }
    private func v5(_ router: String) -> String { "{\(outbounds), \"router\": \(router)}" }

    private func parse(_ text: String) throws -> RoutingConfig {
        let config = try ConfigParser.parse(text: text, sourceFile: "config.json", geodata: locator)
        return try XCTUnwrap(config.routing)
    }

    private func assertError(_ text: String, _ description: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let config = try ConfigParser.parse(text: text, sourceFile: "config.json", geodata: locator)
            XCTFail("expected an error, parsed \(String(describing: config.routing))", file: file, line: line)
        } catch let error as ConfigError {
            XCTAssertEqual(error.description.replacingOccurrences(of: geodataDirectory, with: "DIR"), description,
                           file: file, line: line)
        } catch {
            XCTFail("expected a ConfigError, got \(error)", file: file, line: line)
        }
    }

    // MARK: v4

    func testV4FullRule() throws {
        let routing = try parse(v4(#"""
            {"domainStrategy": "IPIfNonMatch", "domainMatcher": "mph",
             "rules": [
               {"type": "field", "outboundTag": "block",
                "domain": ["example.com", "domain:Example.org", "full:a.example.net", "regexp:^cdn\\d+\\.",
                           "keyword:ads", "geosite:test@ads", "ext:custom.dat:mine"],
                "ip": ["10.0.0.0/8", "192.0.2.1", "::1/128", "geoip:private", "geoip:!cn", "ext:customip.dat:MINE"],
                "port": "53,443,1000-2000", "sourcePort": 1234, "network": "tcp,udp",
                "source": ["198.51.100.0/24"], "user": ["a@b.c"], "inboundTag": ["in-1", "in-2"]},
               {"outboundTag": "direct", "domains": ["geosite:cn"], "port": 80}
             ]}
            """#))
        XCTAssertEqual(routing.domainStrategy, .ipIfNonMatch)
        XCTAssertEqual(routing.rules.count, 2)
        let rule = routing.rules[0]
        XCTAssertEqual(rule.target, .outbound("block"))
        XCTAssertEqual(rule.jsonPath, "routing.rules[0]")
        var domains = DomainSet()
        domains.substrings = ["example.com", "ads"]
        domains.regexes = ["^cdn\\d+\\."]
        domains.rootDomains = ["example.org", "example.com"]  // geosite:test@ads keeps only the @ads entry
        domains.full = ["a.example.net", "mine.example"]
        XCTAssertEqual(rule.domains?.substrings, domains.substrings)
        XCTAssertEqual(rule.domains?.regexes, domains.regexes)
        XCTAssertEqual(rule.domains?.rootDomains, domains.rootDomains)
        XCTAssertEqual(rule.domains?.full, domains.full)
        XCTAssertEqual(rule.ip?.count, 4)
        XCTAssertEqual(rule.ip?[0].cidrs.map(\.prefix), [8, 32, 128])
        XCTAssertEqual(rule.ip?[1], PrivateIPRanges.set)
        XCTAssertEqual(rule.ip?[2].inverse, true)
        XCTAssertEqual(rule.ip?[2].cidrs.count, 3)
        XCTAssertEqual(rule.ip?[3].cidrs, [CIDR(address: [203, 0, 113, 0], prefix: 24)])
        XCTAssertEqual(rule.ports, [PortRange(53, 53), PortRange(443, 443), PortRange(1000, 2000)])
        XCTAssertEqual(rule.sourcePorts, [PortRange(1234, 1234)])
        XCTAssertEqual(rule.networks, [.tcp, .udp])
        XCTAssertEqual(rule.source?.first?.cidrs, [CIDR(address: [198, 51, 100, 0], prefix: 24)])
        XCTAssertEqual(rule.users, ["a@b.c"])
        XCTAssertEqual(rule.inboundTags, ["in-1", "in-2"])
        XCTAssertEqual(routing.rules[1].domains?.rootDomains, ["cn", "baidu.com"])
        XCTAssertEqual(routing.rules[1].ports, [PortRange(80, 80)])

        // The model survives the trip to the workers.
        let data = try JSONEncoder().encode(routing)
        XCTAssertEqual(try JSONDecoder().decode(RoutingConfig.self, from: data), routing)
    }

    func testV4GeoipPrivateNeedsNoFile() throws {
        let text = v4(#"{"rules": [{"type": "field", "ip": ["geoip:private"], "outboundTag": "block"}]}"#)
        let config = try ConfigParser.parse(text: text, sourceFile: "c.json", geodata: GeoDataLocator(directories: []))
        XCTAssertEqual(config.routing?.rules.first?.ip, [PrivateIPRanges.set])
    }

    func testV4StrategiesAndShortForms() throws {
        for (text, strategy) in [("AsIs", RoutingConfig.DomainStrategy.asIs), ("IPOnDemand", .ipOnDemand),
                                 ("ipifnonmatch", .ipIfNonMatch), ("ip_on_demand", .ipOnDemand), ("AlwaysIP", .asIs)] {
            XCTAssertEqual(try parse(v4("{\"domainStrategy\": \"\(text)\"}")).domainStrategy, strategy, text)
        }
        // StringList: one comma-separated string; port as a string with spaces; network as an array.
        let rule = try parse(v4(#"{"rules": [{"inboundTag": "a,b", "port": " 80 , 8000-8080", "network": ["udp"], "outboundTag": "direct"}]}"#)).rules[0]
        XCTAssertEqual(rule.inboundTags, ["a", "b"])
        XCTAssertEqual(rule.ports, [PortRange(80, 80), PortRange(8000, 8080)])
        XCTAssertEqual(rule.networks, [.udp])
    }

    func testEmptyListsAreNoCondition() throws {
        let v4Rule = try parse(v4(#"""
            {"rules": [{"domain": [], "ip": [], "source": [], "user": [], "inboundTag": [], "protocol": [], "network": "",
                        "port": 80, "outboundTag": "block"}]}
            """#)).rules[0]
        var expected = RoutingRule(target: .outbound("block"), jsonPath: "routing.rules[0]")
        expected.ports = [PortRange(80, 80)]
        XCTAssertEqual(v4Rule, expected)
        let v5Rule = try parse(v5(#"""
            {"rule": [{"domain": [], "geoDomain": [], "geoip": [], "sourceGeoip": [], "userEmail": [], "inboundTag": [],
                       "protocol": [], "networks": [], "sourcePortList": "", "portList": "80", "tag": "block"}]}
            """#)).rules[0]
        expected.jsonPath = "router.rule[0]"
        XCTAssertEqual(v5Rule, expected)
        assertError(v4(#"{"rules": [{"domain": [], "outboundTag": "block"}]}"#),
                    "config.json: routing.rules[0]: a rule needs at least one condition")
    }

    func testV4Balancers() throws {
        let routing = try parse(v4(#"""
            {"balancers": [{"tag": "b", "selector": ["proxy-"], "strategy": {"type": "random"}},
                           {"tag": "f", "selector": ["none-"], "fallbackTag": "direct"}],
             "rules": [{"type": "field", "network": "tcp", "balancerTag": "b"}]}
            """#))
        XCTAssertEqual(routing.balancers, [
            RoutingBalancer(tag: "b", selectors: ["proxy-"], jsonPath: "routing.balancers[0]"),
            RoutingBalancer(tag: "f", selectors: ["none-"], fallbackTag: "direct", jsonPath: "routing.balancers[1]"),
        ])
        XCTAssertEqual(routing.rules[0].target, .balancer("b"))
    }

    func testV4Errors() {
        let r = "config.json: routing"
        assertError(v4(#"{"rules": [{"type": "field", "outboundTag": "direct"}]}"#),
                    "\(r).rules[0]: a rule needs at least one condition")
        assertError(v4(#"{"rules": [{"type": "field", "port": 1}]}"#),
                    "\(r).rules[0]: a rule needs \"outboundTag\" or \"balancerTag\"")
        assertError(v4(#"{"rules": [{"port": 1, "outboundTag": "direct", "balancerTag": "b"}]}"#),
                    "\(r).rules[0]: a rule has \"outboundTag\" or \"balancerTag\", not both")
        assertError(v4(#"{"rules": [{"port": 1, "outboundTag": "nowhere"}]}"#),
                    "\(r).rules[0].outboundTag: no outbound has tag \"nowhere\"")
        assertError(v4(#"{"rules": [{"port": 1, "balancerTag": "nob"}]}"#),
                    "\(r).rules[0].balancerTag: no balancer has tag \"nob\"")
        assertError(v4(#"{"rules": [{"type": "chinaip", "port": 1, "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].type: expected \"field\", got \"chinaip\"")
        assertError(v4(#"{"rules": [{"port": 1, "outboundTag": "direct", "attrs": "attrs[':method'] == 'GET'"}]}"#),
                    "\(r).rules[0].attrs: \"attrs\" is not supported by vmessd yet")
        assertError(v4(#"{"rules": [{"port": 1, "outboundTag": "direct", "frob": 1}]}"#),
                    "\(r).rules[0].frob: unknown key \"frob\"")
        assertError(v4(#"{"frob": 1}"#), "\(r).frob: unknown key \"frob\"")
        assertError(v4(#"{"domainStrategy": "IPIfNotMatch"}"#),
                    "\(r).domainStrategy: expected one of AsIs, IPIfNonMatch, IPOnDemand, got \"IPIfNotMatch\"")
        assertError(v4(#"{"domainMatcher": "fast"}"#), "\(r).domainMatcher: expected \"linear\" or \"mph\", got \"fast\"")
        assertError(v4(#"{"rules": [{"port": "70000", "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].port: invalid port or range \"70000\" (expected ports 0-65535 like \"53,443,1000-2000\")")
        assertError(v4(#"{"rules": [{"port": "20-10", "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].port: invalid port or range \"20-10\" (expected ports 0-65535 like \"53,443,1000-2000\")")
        assertError(v4(#"{"rules": [{"port": "1,,2", "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].port: invalid port or range \"\" (expected ports 0-65535 like \"53,443,1000-2000\")")
        assertError(v4(#"{"rules": [{"port": true, "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].port: expected a port number or a string like \"53,443,1000-2000\", got boolean")
        assertError(v4(#"{"rules": [{"network": "tcp,quic", "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].network: expected \"tcp\" or \"udp\", got \"quic\"")
        assertError(v4(#"{"rules": [{"ip": ["10.0.0.0/33"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].ip[0]: expected a CIDR, an IP address, \"geoip:CODE\" or \"ext:FILE:TAG\", got \"10.0.0.0/33\"")
        assertError(v4(#"{"rules": [{"ip": ["example.com"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].ip[0]: expected a CIDR, an IP address, \"geoip:CODE\" or \"ext:FILE:TAG\", got \"example.com\"")
        assertError(v4(#"{"rules": [{"domain": ["regexp:(?i)x"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].domain[0]: regexp \"(?i)x\": group flags and named groups are not supported")
        assertError(v4(#"{"rules": [{"domain": ["domain:"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].domain[0]: empty pattern after \"domain:\"")
        assertError(v4(#"{"rules": [{"domain": ["dotless:x"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].domain[0]: \"dotless:\" patterns are not supported by vmessd yet")
        assertError(v4(#"{"rules": [{"domain": ["ext:custom.dat"], "outboundTag": "direct"}]}"#),
                    "\(r).rules[0].domain[0]: expected \"ext:FILE:TAG\", got \"ext:custom.dat\"")
        assertError(v4(#"{"balancers": [{"tag": "b", "selector": ["zzz"]}]}"#),
                    "\(r).balancers[0].selector: no outbound tag starts with \"zzz\"")
        assertError(v4(#"{"balancers": [{"tag": "b", "selector": ["proxy"]}, {"tag": "b", "selector": ["proxy"]}]}"#),
                    "\(r).balancers[1].tag: duplicate balancer tag \"b\"")
        assertError(v4(#"{"balancers": [{"tag": "b", "selector": ["zzz"], "fallbackTag": "gone"}]}"#),
                    "\(r).balancers[0].fallbackTag: no outbound has tag \"gone\"")
        assertError(v4(#"{"balancers": [{"tag": "b", "selector": ["proxy"], "strategy": {"type": "leastPing"}}]}"#),
                    "\(r).balancers[0].strategy.type: balancing strategy \"leastPing\" is not supported by vmessd yet")
        assertError(v4(#"{"balancers": [{"tag": "b", "selector": []}]}"#),
                    "\(r).balancers[0].selector: a balancer needs at least one selector")
        assertError(v4(#"{"settings": {}}"#), "\(r).settings: \"settings\" is not supported by vmessd yet")
        assertError("{\(outbounds), \"routing\": {}, \"router\": {}}",
                    "config.json: routing: \"routing\" (v4) and \"router\" (v5) both present; keep one")
    }

    func testGeodataErrors() {
        let r = "config.json: routing.rules[0]"
        assertError(v4(#"{"rules": [{"domain": ["geosite:xyz"], "outboundTag": "direct"}]}"#),
                    "\(r).domain[0]: geosite.dat has no tag \"xyz\" (looked in DIR/geosite.dat)")
        assertError(v4(#"{"rules": [{"domain": ["geosite:test@nope"], "outboundTag": "direct"}]}"#),
                    "\(r).domain[0]: geosite.dat tag \"test\" has no domain with attribute @nope")
        assertError(v4(#"{"rules": [{"ip": ["geoip:zz"], "outboundTag": "direct"}]}"#),
                    "\(r).ip[0]: geoip.dat has no tag \"zz\" (looked in DIR/geoip.dat)")
        assertError(v4(#"{"rules": [{"domain": ["ext:missing.dat:x"], "outboundTag": "direct"}]}"#),
                    "\(r).domain[0]: missing.dat not found (looked in /nonexistent-vmessd/missing.dat, DIR/missing.dat)")
        assertError(v4(#"{"rules": [{"ip": ["ext:broken.dat:x"], "outboundTag": "direct"}]}"#),
                    "\(r).ip[0]: DIR/broken.dat is not a valid geoip file: length 127 runs past the end (1 bytes left) at byte 1")
        assertError(v4(#"{"rules": [{"port": 1, "outboundTag": "direct"}, {"source": ["geoip:cn", "ext:customip.dat:nope"], "outboundTag": "direct"}]}"#),
                    "config.json: routing.rules[1].source[1]: customip.dat has no tag \"nope\" (looked in DIR/customip.dat)")
    }

    // MARK: v5

    func testV5Router() throws {
        let routing = try parse(v5(#"""
            {"domainStrategy": "IpOnDemand",
             "rule": [
               {"tag": "block",
                "domain": [{"type": "RootDomain", "value": "Example.com"}, {"type": "Full", "value": "a.b"},
                           {"type": "Regex", "value": "^x\\d$"}, {"value": "kw"}, {"type": 3, "value": "n.b"}],
                "geoDomain": [{"code": "test@ads"}, {"code": "mine", "filePath": "custom.dat"}],
                "geoip": [{"code": "private"}, {"code": "cn", "inverseMatch": true},
                          {"cidr": [{"ipAddr": "10.0.0.0", "prefix": 8}, {"ipAddr": "::1"}]}],
                "portList": "443,8000-8080", "networks": "tcp,udp",
                "source_geoip": [{"code": "mine", "filePath": "customip.dat"}], "sourcePortList": "1-1024",
                "userEmail": ["a@b.c"], "inboundTag": ["in"], "domainMatcher": "linear"},
               {"balancingTag": "lb", "networks": ["udp"]}
             ],
             "balancingRule": [{"tag": "lb", "outboundSelector": ["proxy-"], "strategy": "random"}]}
            """#))
        XCTAssertEqual(routing.domainStrategy, .ipOnDemand)
        let rule = routing.rules[0]
        XCTAssertEqual(rule.target, .outbound("block"))
        XCTAssertEqual(rule.jsonPath, "router.rule[0]")
        XCTAssertEqual(rule.domains?.rootDomains, ["example.com", "example.com"])
        XCTAssertEqual(rule.domains?.full, ["a.b", "n.b", "mine.example"])
        XCTAssertEqual(rule.domains?.regexes, ["^x\\d$"])
        XCTAssertEqual(rule.domains?.substrings, ["kw"])
        XCTAssertEqual(rule.ip?[0], PrivateIPRanges.set)
        XCTAssertEqual(rule.ip?[1].inverse, true)
        XCTAssertEqual(rule.ip?[2].cidrs, [CIDR(address: [10, 0, 0, 0], prefix: 8), CIDR(address: ipAddressBytes("::1")!, prefix: 128)])
        XCTAssertEqual(rule.ports, [PortRange(443, 443), PortRange(8000, 8080)])
        XCTAssertEqual(rule.networks, [.tcp, .udp])
        XCTAssertEqual(rule.source?[0].cidrs, [CIDR(address: [203, 0, 113, 0], prefix: 24)])
        XCTAssertEqual(rule.sourcePorts, [PortRange(1, 1024)])
        XCTAssertEqual(rule.users, ["a@b.c"])
        XCTAssertEqual(rule.inboundTags, ["in"])
        XCTAssertEqual(routing.rules[1].target, .balancer("lb"))
        XCTAssertEqual(routing.balancers, [RoutingBalancer(tag: "lb", selectors: ["proxy-"], jsonPath: "router.balancingRule[0]")])
    }

    func testV5Errors() {
        let r = "config.json: router"
        assertError(v5(#"{"domainStrategy": "IPIfNonMatch"}"#),
                    "\(r).domainStrategy: expected one of AsIs, UseIp, IpIfNonMatch, IpOnDemand, got \"IPIfNonMatch\"")
        assertError(v5(#"{"rule": [{"tag": "x", "portList": "1"}]}"#), "\(r).rule[0].tag: no outbound has tag \"x\"")
        assertError(v5(#"{"rule": [{"portList": "1"}]}"#), "\(r).rule[0]: a rule needs \"tag\" or \"balancingTag\"")
        assertError(v5(#"{"rule": [{"tag": "direct"}]}"#), "\(r).rule[0]: a rule needs at least one condition")
        assertError(v5(#"{"rule": [{"tag": "direct", "domain": [{"type": "Keyword", "value": "x"}]}]}"#),
                    "\(r).rule[0].domain[0].type: expected one of Plain, Regex, RootDomain, Full, got \"Keyword\"")
        assertError(v5(#"{"rule": [{"tag": "direct", "domain": [{"type": "Regex", "value": "(a"}]}]}"#),
                    "\(r).rule[0].domain[0].value: regexp \"(a\": missing \")\"")
        assertError(v5(#"{"rule": [{"tag": "direct", "geoDomain": [{"code": "nope"}]}]}"#),
                    "\(r).rule[0].geoDomain[0].code: geosite.dat has no tag \"nope\" (looked in DIR/geosite.dat)")
        assertError(v5(#"{"rule": [{"tag": "direct", "geoip": [{"code": "cn", "cidr": []}]}]}"#),
                    "\(r).rule[0].geoip[0].code: \"cidr\" has no effect when \"code\" loads a geoip entry")
        assertError(v5(#"{"rule": [{"tag": "direct", "geoip": [{"cidr": [{"ipAddr": "x"}]}]}]}"#),
                    "\(r).rule[0].geoip[0].cidr[0].ipAddr: expected an IP address, got \"x\"")
        assertError(v5(#"{"rule": [{"tag": "direct", "geoip": [{"cidr": [{"ipAddr": "1.2.3.4", "prefix": 40}]}]}]}"#),
                    "\(r).rule[0].geoip[0].cidr[0].prefix: expected an integer 0-32, got 40")
        assertError(v5(#"{"rule": [{"tag": "direct", "geoip": [{"inverseMatch": true}]}]}"#),
                    "\(r).rule[0].geoip[0]: a geoip entry needs \"code\" or \"cidr\"")
        assertError(v5(#"{"rule": [{"tag": "direct", "networks": "tcp", "attributes": "x"}]}"#),
                    "\(r).rule[0].attributes: \"attributes\" is not supported by vmessd yet")
        assertError(v5(#"{"rule": [{"tag": "direct", "port_list": "1", "portList": "2"}]}"#),
                    "\(r).rule[0].portList: \"portList\" repeats another spelling of the same field")
        assertError(v5(#"{"balancingRule": [{"tag": "b", "outboundSelector": ["proxy"], "strategySettings": {}}]}"#),
                    "\(r).balancingRule[0].strategySettings: \"strategySettings\" is not supported by vmessd yet")
        assertError(v5(#"{"balancingRule": [{"tag": "b", "outboundSelector": ["q"]}]}"#),
                    "\(r).balancingRule[0].outboundSelector: no outbound tag starts with \"q\"")
    }

    func testParsedConfigDrivesTheRouter() throws {
        let config = try ConfigParser.parse(text: v4(#"""
            {"domainStrategy": "IPOnDemand",
             "rules": [{"type": "field", "ip": ["geoip:private"], "outboundTag": "block"},
                       {"type": "field", "domain": ["geosite:cn", "regexp:^cdn[0-9]+\\.example\\.net$"], "outboundTag": "proxy-1"}]}
            """#), sourceFile: "c.json", geodata: locator)
        let router = try Router(try XCTUnwrap(config.routing), outboundTags: config.outbounds.map(\.tag))
        XCTAssertEqual(router.route(RouteRequest(ip: [127, 0, 0, 1], port: 22)), .outbound(1))
        XCTAssertEqual(router.route(RouteRequest(domain: "www.baidu.com", port: 443)), .resolveFirst)
        XCTAssertEqual(router.route(RouteRequest(domain: "www.baidu.com", port: 443, resolvedIPs: [[39, 156, 66, 10]])), .outbound(2))
        XCTAssertEqual(router.route(RouteRequest(domain: "cdn7.example.net", port: 443, resolvedIPs: [])), .outbound(2))
        XCTAssertEqual(router.route(RouteRequest(domain: "example.net", port: 443, resolvedIPs: [])), .outbound(0))
    }
}
