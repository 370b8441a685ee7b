// The compiled router: every matcher kind, first-match order, balancers, and when each domain
// strategy answers `.resolveFirst`.

import XCTest

@testable import Shared

final class RouterTests: XCTestCase {
    let tags: [String?] = ["direct", "block", "proxy-a", "proxy-b", nil]

    private func rule(_ target: String, _ configure: (inout RoutingRule) -> Void) -> RoutingRule {
        var rule = RoutingRule(target: .outbound(target), jsonPath: "rules[x]")
        configure(&rule)
        return rule
    }

    private func router(_ rules: [RoutingRule], strategy: RoutingConfig.DomainStrategy = .asIs,
                        balancers: [RoutingBalancer] = [], random: @escaping @Sendable (Int) -> Int = { _ in 0 }) throws -> Router {
        try Router(RoutingConfig(domainStrategy: strategy, rules: rules, balancers: balancers), outboundTags: tags,
                   randomIndex: random)
    }

    private func domains(_ configure: (inout DomainSet) -> Void) -> DomainSet {
        var set = DomainSet()
        configure(&set)
        return set
    }

    private func cidrs(_ texts: String..., inverse: Bool = false) -> [IPSet] {
        [IPSet(cidrs: texts.map { cidrFromText($0)! }, inverse: inverse)]
    }

    private func ip(_ text: String) -> [UInt8] { ipAddressBytes(text)! }

    func testDomainKinds() throws {
        let r = try router([
            rule("block") { $0.domains = domains { $0.full = ["full.example.com"] } },
            rule("proxy-a") { $0.domains = domains { $0.rootDomains = ["example.org"] } },
            rule("proxy-b") { $0.domains = domains { $0.substrings = ["track"] } },
            rule("direct") { $0.domains = domains { $0.regexes = ["^cdn[0-9]+\\."] } },
        ])
        func route(_ domain: String) -> RouteDecision { r.route(RouteRequest(domain: domain, port: 443)) }
        XCTAssertEqual(route("full.example.com"), .outbound(1))
        XCTAssertEqual(route("FULL.Example.com."), .outbound(1))  // case and the root dot do not matter
        XCTAssertEqual(route("x.full.example.com"), .outbound(0))  // full: is exact → default
        XCTAssertEqual(route("example.org"), .outbound(2))
        XCTAssertEqual(route("a.b.example.org"), .outbound(2))
        XCTAssertEqual(route("badexample.org"), .outbound(0))  // domain: needs a label boundary
        XCTAssertEqual(route("example.org.cn"), .outbound(0))
        XCTAssertEqual(route("tracker.net"), .outbound(3))
        XCTAssertEqual(route("x.untracked.io"), .outbound(3))
        XCTAssertEqual(route("cdn12.x.net"), .outbound(0))  // the regex rule targets "direct" (0) anyway
        XCTAssertEqual(r.route(RouteRequest(ip: ip("1.2.3.4"), port: 443)), .outbound(0))  // no domain
        XCTAssertEqual(route(""), .outbound(0))
        XCTAssertEqual(route("."), .outbound(0))
    }

    func testRegexRule() throws {
        let r = try router([rule("block") { $0.domains = domains { $0.regexes = ["^cdn[0-9]+\\.", "ads$"] } }])
        XCTAssertEqual(r.route(RouteRequest(domain: "cdn12.x.net", port: 1)), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "x.cdn12.net", port: 1)), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "myads", port: 1)), .outbound(1))
    }

    func testCIDRs() throws {
        let r = try router([
            rule("block") { $0.ip = cidrs("10.0.0.0/8", "192.168.1.1", "fc00::/7", "::ffff:100.64.0.0/106") },
            rule("proxy-a") { $0.ip = cidrs("1.0.1.0/24", inverse: true) },
        ])
        func route(_ text: String) -> RouteDecision { r.route(RouteRequest(ip: ip(text), port: 80)) }
        XCTAssertEqual(route("10.1.2.3"), .outbound(1))
        XCTAssertEqual(route("10.255.255.255"), .outbound(1))
        XCTAssertEqual(route("192.168.1.1"), .outbound(1))
        XCTAssertEqual(route("192.168.1.2"), .outbound(2))  // outside 1.0.1.0/24 → inverse rule
        XCTAssertEqual(route("1.0.1.77"), .outbound(0))
        XCTAssertEqual(route("fd12::1"), .outbound(1))
        XCTAssertEqual(route("::ffff:10.0.0.1"), .outbound(1))  // mapped v4 matches v4 blocks
        XCTAssertEqual(route("100.100.0.1"), .outbound(1))  // a mapped block matches plain v4
        XCTAssertEqual(route("::ffff:1.0.1.5"), .outbound(0))
        XCTAssertEqual(route("2001:db8::1"), .outbound(2))
    }

    func testIPRangeSetEdges() {
        let set = IPRangeSet(["0.0.0.0/0", "::/0"].map { cidrFromText($0)! })
        XCTAssertTrue(set.contains([0, 0, 0, 0]))
        XCTAssertTrue(set.contains([255, 255, 255, 255]))
        XCTAssertTrue(set.contains([UInt8](repeating: 0xff, count: 16)))
        XCTAssertFalse(set.contains([1, 2, 3]))
        // Overlapping and adjacent blocks merge.
        let merged = IPRangeSet(["10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/24", "11.0.0.0/8", "2001:db8::/33", "2001:db8:8000::/33"]
            .map { cidrFromText($0)! })
        XCTAssertEqual(merged.rangeCount, 2)
        XCTAssertTrue(merged.contains([11, 255, 0, 1]))
        XCTAssertFalse(merged.contains([12, 0, 0, 0]))
        XCTAssertFalse(merged.contains([9, 255, 255, 255]))
        XCTAssertTrue(merged.contains(ipAddressBytes("2001:db8:ffff::1")!))
        XCTAssertFalse(merged.contains(ipAddressBytes("2001:db9::")!))
        XCTAssertFalse(IPRangeSet([]).contains([1, 1, 1, 1]))
        let host = IPRangeSet([cidrFromText("::1")!])
        XCTAssertTrue(host.contains(ipAddressBytes("::1")!))
        XCTAssertFalse(host.contains(ipAddressBytes("::2")!))
        XCTAssertFalse(host.contains(ipAddressBytes("::")!))
        // A v6 block wider than ::ffff:0:0/96 holds the mapped v4 addresses too (found by FuzzGeoData).
        let wide = IPRangeSet([cidrFromText("::ffff:0:0/80")!])
        XCTAssertTrue(wide.contains(ipAddressBytes("::ffff:1.2.3.4")!))
        XCTAssertTrue(wide.contains([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]))
    }

    func testPrivateRanges() throws {
        let r = try router([rule("block") { $0.ip = [PrivateIPRanges.set] }])
        for text in ["127.0.0.1", "10.9.8.7", "172.31.255.255", "192.168.0.1", "169.254.1.1", "100.64.0.1", "0.1.2.3",
                     "224.0.0.1", "239.1.1.1", "240.0.0.1", "255.255.255.255", "::1", "fd00::1", "fe80::1"] {
            XCTAssertEqual(r.route(RouteRequest(ip: ip(text), port: 80)), .outbound(1), text)
        }
        for text in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:4860::8888", "1.1.1.1", "223.255.255.255", "::2"] {
            XCTAssertEqual(r.route(RouteRequest(ip: ip(text), port: 80)), .outbound(0), text)
        }
    }

    func testPortsNetworksAndSource() throws {
        let r = try router([
            rule("block") { $0.ports = [PortRange(25, 25), PortRange(6881, 6889)]; $0.networks = [.tcp] },
            rule("proxy-a") { $0.networks = [.udp]; $0.ports = [PortRange(0, 65535)] },
            rule("proxy-b") { $0.sourcePorts = [PortRange(1000, 2000)]; $0.source = cidrs("192.0.2.0/24") },
        ])
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 25, network: .tcp)), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 6889, network: .tcp)), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 6890, network: .tcp)), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 25, network: .udp)), .outbound(2))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 65535, network: .udp)), .outbound(2))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 80, sourceIP: ip("192.0.2.9"), sourcePort: 1500)), .outbound(3))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 80, sourceIP: ip("192.0.2.9"), sourcePort: 999)), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 80, sourceIP: ip("192.0.3.9"), sourcePort: 1500)), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 80, sourcePort: 1500)), .outbound(0))  // no source IP
        XCTAssertTrue(PortBitmap([PortRange(0, 0)]).contains(0))
        XCTAssertFalse(PortBitmap([PortRange(0, 0)]).contains(1))
        XCTAssertTrue(PortBitmap([PortRange(65535, 65535)]).contains(65535))
    }

    func testUsersInboundsProtocols() throws {
        let r = try router([
            rule("block") { $0.users = ["bad@example.com"] },
            rule("proxy-a") { $0.inboundTags = ["socks-in", "http-in"] },
            rule("proxy-b") { $0.protocols = ["bittorrent", "http"] },
        ])
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, user: "bad@example.com")), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, user: "Bad@example.com")), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, inboundTag: "http-in")), .outbound(2))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, inboundTag: "vmess-in")), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, sniffedProtocol: "bittorrent")), .outbound(3))
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, sniffedProtocol: "http1")), .outbound(3))  // prefix
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, sniffedProtocol: "tls")), .outbound(0))
    }

    func testFirstMatchWinsAndConditionsAreANDed() throws {
        let r = try router([
            rule("block") { $0.domains = domains { $0.rootDomains = ["example.com"] }; $0.ports = [PortRange(25, 25)] },
            rule("proxy-a") { $0.domains = domains { $0.rootDomains = ["example.com"] } },
            rule("proxy-b") { $0.domains = domains { $0.rootDomains = ["www.example.com"] } },
        ])
        XCTAssertEqual(r.route(RouteRequest(domain: "www.example.com", port: 25)), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "www.example.com", port: 443)), .outbound(2))  // not proxy-b
        XCTAssertEqual(r.route(RouteRequest(domain: "other.net", port: 443)), .outbound(0))
    }

    func testBalancer() throws {
        let picks = LockedCounter()
        let r = try router([
            RoutingRule(target: .balancer("b"), jsonPath: "r0").with { $0.networks = [.tcp] },
            RoutingRule(target: .balancer("fb"), jsonPath: "r1").with { $0.networks = [.udp] },
        ], balancers: [
            RoutingBalancer(tag: "b", selectors: ["proxy-"], jsonPath: "b0"),
            RoutingBalancer(tag: "fb", selectors: ["nothing"], fallbackTag: "block", jsonPath: "b1"),
        ], random: { n in picks.next() % n })
        var seen: [RouteDecision] = []
        for _ in 0..<4 { seen.append(r.route(RouteRequest(domain: "a", port: 1))) }
        XCTAssertEqual(seen, [.outbound(2), .outbound(3), .outbound(2), .outbound(3)])
        XCTAssertEqual(r.route(RouteRequest(domain: "a", port: 1, network: .udp)), .outbound(1))

        // With the real random source every candidate shows up.
        let random = try Router(RoutingConfig(rules: [RoutingRule(target: .balancer("b"), jsonPath: "r").with { $0.ports = [PortRange(1, 1)] }],
                                              balancers: [RoutingBalancer(tag: "b", selectors: ["proxy", "bl"], jsonPath: "b")]),
                                outboundTags: tags)
        let outcomes = Set((0..<200).map { _ in random.route(RouteRequest(port: 1)) })
        XCTAssertEqual(outcomes, [.outbound(1), .outbound(2), .outbound(3)])
    }

    func testRouterErrors() {
        XCTAssertThrowsError(try Router(RoutingConfig(), outboundTags: [])) { error in
            XCTAssertEqual((error as? RouterError)?.reason, "no outbounds to route to")
        }
        XCTAssertThrowsError(try router([rule("nope") { $0.ports = [PortRange(1, 1)] }])) { error in
            XCTAssertEqual((error as? RouterError)?.reason, "rules[x]: no outbound tagged \"nope\"")
        }
        XCTAssertThrowsError(try router([RoutingRule(target: .balancer("x"), jsonPath: "r").with { $0.ports = [] }])) { error in
            XCTAssertEqual((error as? RouterError)?.reason, "r: no balancer tagged \"x\"")
        }
        XCTAssertThrowsError(try router([], balancers: [RoutingBalancer(tag: "b", selectors: ["zzz"], jsonPath: "b0")])) { error in
            XCTAssertEqual((error as? RouterError)?.reason, "b0: no outbound tag starts with [\"zzz\"]")
        }
        XCTAssertNoThrow(try Router(RoutingConfig(), outboundTags: [nil]))
    }

    // MARK: domain strategies

    private func strategyRouter(_ strategy: RoutingConfig.DomainStrategy) throws -> Router {
        try router([
            rule("proxy-a") { $0.domains = domains { $0.rootDomains = ["example.com"] } },
            rule("block") { $0.ip = [PrivateIPRanges.set] },
            rule("proxy-b") { $0.ports = [PortRange(8080, 8080)] },
        ], strategy: strategy)
    }

    func testAsIsNeverResolves() throws {
        let r = try strategyRouter(.asIs)
        XCTAssertEqual(r.route(RouteRequest(domain: "internal.lan", port: 80)), .outbound(0))
        XCTAssertEqual(r.route(RouteRequest(domain: "internal.lan", port: 8080)), .outbound(3))
        XCTAssertEqual(r.route(RouteRequest(ip: ip("10.0.0.1"), port: 80)), .outbound(1))
        XCTAssertEqual(r.route(RouteRequest(domain: "www.example.com", port: 80)), .outbound(2))
    }

    func testIPOnDemandResolvesAtTheFirstIPRule() throws {
        let r = try strategyRouter(.ipOnDemand)
        // A domain rule before the IP rule decides without resolving.
        XCTAssertEqual(r.route(RouteRequest(domain: "www.example.com", port: 80)), .outbound(2))
        // Reaching the IP rule with only a domain: resolve.
        var request = RouteRequest(domain: "internal.lan", port: 80)
        XCTAssertEqual(r.route(request), .resolveFirst)
        request.resolvedIPs = [ip("2001:db8::1"), ip("192.168.1.10")]
        XCTAssertEqual(r.route(request), .outbound(1))  // any resolved address may match
        request.resolvedIPs = [ip("93.184.216.34")]
        XCTAssertEqual(r.route(request), .outbound(0))
        request.resolvedIPs = []  // resolution failed: IP rules cannot hold, no second question
        XCTAssertEqual(r.route(request), .outbound(0))
        request.port = 8080
        XCTAssertEqual(r.route(request), .outbound(3))
        // An IP destination never needs resolution.
        XCTAssertEqual(r.route(RouteRequest(ip: ip("10.0.0.1"), port: 80)), .outbound(1))
    }

    func testIPOnDemandSkipsRulesWhoseOtherConditionsFail() throws {
        let r = try router([
            rule("block") { $0.ip = [PrivateIPRanges.set]; $0.networks = [.udp] },
            rule("proxy-a") { $0.ports = [PortRange(80, 80)] },
        ], strategy: .ipOnDemand)
        XCTAssertEqual(r.route(RouteRequest(domain: "a.lan", port: 80, network: .tcp)), .outbound(2))
        XCTAssertEqual(r.route(RouteRequest(domain: "a.lan", port: 80, network: .udp)), .resolveFirst)
    }

    func testIPIfNonMatchResolvesOnlyWhenNothingMatched() throws {
        let r = try strategyRouter(.ipIfNonMatch)
        XCTAssertEqual(r.route(RouteRequest(domain: "www.example.com", port: 80)), .outbound(2))
        // A later non-IP rule matches in the first pass: no resolution.
        XCTAssertEqual(r.route(RouteRequest(domain: "internal.lan", port: 8080)), .outbound(3))
        var request = RouteRequest(domain: "internal.lan", port: 80)
        XCTAssertEqual(r.route(request), .resolveFirst)
        request.resolvedIPs = [ip("10.1.1.1")]
        XCTAssertEqual(r.route(request), .outbound(1))
        request.resolvedIPs = [ip("8.8.8.8")]
        XCTAssertEqual(r.route(request), .outbound(0))
        // No IP rule at all: never resolve.
        let noIP = try router([rule("block") { $0.ports = [PortRange(1, 1)] }], strategy: .ipIfNonMatch)
        XCTAssertEqual(noIP.route(RouteRequest(domain: "x.y", port: 2)), .outbound(0))
        // An IP destination never resolves.
        XCTAssertEqual(r.route(RouteRequest(ip: ip("8.8.8.8"), port: 80)), .outbound(0))
    }
}

extension RoutingRule {
    func with(_ configure: (inout RoutingRule) -> Void) -> RoutingRule {
        var copy = self
        configure(&copy)
        return copy
    }
}

final class LockedCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}
