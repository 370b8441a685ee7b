import XCTest
@testable import Shared

/// `api`, `stats` and the statistics switches of `policy` (issue 10): the operator's V2Ray form (a
/// dokodemo-door inbound routed to the API's tag) becomes a listener of the supervisor's gRPC server
/// and leaves the workers' inbounds and rules; the switches decide which counters exist.
final class APIConfigTests: XCTestCase {
    static let uuid = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"

    func parse(_ text: String) throws -> Config { try ConfigParser.parse(text: text, sourceFile: "config.json") }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(expected), "\(error)\n  expected: \(expected)", file: file, line: line)
        }
    }

    /// The layout of published panel configs (x-ui, v2ray-step-by-step).
    func operatorConfig(services: String = #"["HandlerService", "LoggerService", "StatsService"]"#, extraRule: String = "") -> String {
        """
        {"stats": {},
         "api": {"tag": "api", "services": \(services)},
         "policy": {"levels": {"0": {"statsUserUplink": true, "statsUserDownlink": true}},
                    "system": {"statsInboundUplink": true, "statsInboundDownlink": true,
                               "statsOutboundUplink": true, "statsOutboundDownlink": true}},
         "inbounds": [
           {"listen": "127.0.0.1", "port": 62789, "protocol": "dokodemo-door", "settings": {"address": "127.0.0.1"}, "tag": "api"},
           {"port": 443, "protocol": "vmess", "tag": "vmess-in",
            "settings": {"clients": [{"id": "\(Self.uuid)", "email": "alice@example.com"}]}}],
         "outbounds": [{"protocol": "freedom", "tag": "direct"}, {"protocol": "blackhole", "tag": "blocked"}],
         "routing": {"rules": [
           {"type": "field", "inboundTag": ["api"], "outboundTag": "api"}\(extraRule),
           {"type": "field", "ip": ["geoip:private"], "outboundTag": "blocked"}]}}
        """
    }

    func testOperatorsAPIInboundBecomesTheSupervisorsListener() throws {
        let config = try parse(operatorConfig())
        let api = try XCTUnwrap(config.api)
        XCTAssertEqual(api.tag, "api")
        XCTAssertEqual(api.services, [.handler, .logger, .stats])
        XCTAssertEqual(api.listeners, [APIConfig.Listener(host: "127.0.0.1", port: 62789, jsonPath: "inbounds[0]")])
        // The workers never see the API's inbound or its rule.
        XCTAssertEqual(config.inbounds.map(\.tag), ["vmess-in"])
        XCTAssertEqual(config.routing?.rules.count, 1)
        XCTAssertEqual(config.routing?.rules.first?.target, .outbound("blocked"))
        XCTAssertTrue(config.statsEnabled)
        XCTAssertTrue(config.policy.level(0).statsUserUplink)
        XCTAssertTrue(config.policy.system.statsOutboundDownlink)
    }

    func testStatSwitchesNameTheReferencesCounters() throws {
        let switches = StatSwitches(try parse(operatorConfig()))
        XCTAssertEqual(switches.user(email: "alice@example.com", level: 0, .uplink), "user>>>alice@example.com>>>traffic>>>uplink")
        XCTAssertEqual(switches.inbound(tag: "vmess-in", .downlink), "inbound>>>vmess-in>>>traffic>>>downlink")
        XCTAssertEqual(switches.outbound(tag: "direct", .uplink), "outbound>>>direct>>>traffic>>>uplink")
        // No email, another level, no tag: no counter (as in the reference).
        XCTAssertNil(switches.user(email: nil, level: 0, .uplink))
        XCTAssertNil(switches.user(email: "a", level: 1, .uplink))
        XCTAssertNil(switches.outbound(tag: nil, .uplink))
        // Switches without "stats": {} keep nothing.
        var noStats = try parse(operatorConfig())
        noStats.statsEnabled = false
        XCTAssertNil(StatSwitches(noStats).inbound(tag: "vmess-in", .uplink))
    }

    func testXrayListenNeedsNoInbound() throws {
        let config = try parse(#"{"api": {"tag": "api", "listen": "127.0.0.1:10085", "services": ["statsservice"]}, "stats": {}}"#)
        XCTAssertEqual(config.api?.listeners, [APIConfig.Listener(host: "127.0.0.1", port: 10085, jsonPath: "api.listen")])
        XCTAssertEqual(config.api?.services, [.stats])
    }

    func testAPIErrors() {
        assertError(operatorConfig(services: #"["RoutingService"]"#),
                    #"api.services[0]: API service "RoutingService" is not supported by vmessd yet"#)
        assertError(operatorConfig(services: #"["Nonsense"]"#), "one of HandlerService, StatsService, LoggerService")
        // A rule to the API that routes more than inbounds by tag.
        assertError(operatorConfig(extraRule: #", {"type": "field", "domain": ["x.com"], "outboundTag": "api"}"#),
                    #"may only name inbounds with "inboundTag""#)
        // The API inbound must be a dokodemo-door.
        assertError(operatorConfig(extraRule: #", {"type": "field", "inboundTag": ["vmess-in"], "outboundTag": "api"}"#),
                    #"inbound "vmess-in" is routed to the API; it must be a dokodemo-door inbound"#)
        // An API nobody can reach.
        assertError(#"{"api": {"tag": "api", "services": ["StatsService"]}}"#, "the API would be unreachable")
        assertError(#"{"api": {"tag": "direct", "listen": "127.0.0.1:1"}, "outbounds": [{"protocol": "freedom", "tag": "direct"}]}"#,
                    "the API's tag must be its own")
        assertError(#"{"stats": {"x": 1}}"#, "stats.x")
        assertError(#"{"policy": {"levels": {"0": {"statsUserOnline": 1}}}}"#, "statsUserOnline")
    }

    /// v5: stats, policy and the API as services; the API inbound and its rule in v5's router.
    static let v5Operator = """
        {"services": {"stats": {},
                      "policy": {"level": {"0": {"timeout": {"handshake": {"value": 4}, "connectionIdle": {"value": 120}},
                                                 "stats": {"userUplink": true, "user_downlink": true},
                                                 "buffer": {"connection": 4096}}},
                                 "system": {"stats": {"inboundUplink": true, "outbound_downlink": true}}},
                      "commander": {"tag": "api", "name": ["stats", "proxyman"]}},
         "inbounds": [
           {"listen": "127.0.0.1", "port": 10085, "protocol": "dokodemo-door", "settings": {"address": "127.0.0.1", "networks": ["tcp"]}, "tag": "api"},
           {"port": 443, "protocol": "vmess", "tag": "vmess-in",
            "settings": {"users": ["\(uuid)"]}}],
         "outbounds": [{"protocol": "freedom", "tag": "direct"}],
         "router": {"rule": [{"inboundTag": ["api"], "tag": "api"}]}}
        """

    func testV5ServicesStatsPolicyAndCommander() throws {
        let config = try parse(Self.v5Operator)
        XCTAssertEqual(config.format, .v5)
        XCTAssertTrue(config.statsEnabled)
        let api = try XCTUnwrap(config.api)
        XCTAssertEqual(api.tag, "api")
        XCTAssertEqual(api.services, [.stats, .handler])
        XCTAssertEqual(api.listeners.map { "\($0.host):\($0.port)" }, ["127.0.0.1:10085"])
        XCTAssertEqual(config.inbounds.map(\.tag), ["vmess-in"], "the API inbound became the gRPC listener")
        XCTAssertTrue(config.routing?.rules.isEmpty ?? true)
        let level = config.policy.level(0)
        XCTAssertEqual(level.handshake, 4)
        XCTAssertEqual(level.connIdle, 120)
        XCTAssertEqual(level.uplinkOnly, LevelPolicy().uplinkOnly)
        XCTAssertEqual(level.bufferSize, 4)
        XCTAssertTrue(level.statsUserUplink && level.statsUserDownlink)
        XCTAssertTrue(config.policy.system.statsInboundUplink && config.policy.system.statsOutboundDownlink)
        XCTAssertFalse(config.policy.system.statsInboundDownlink)
    }

    func testV5ServiceErrors() {
        func v5(_ services: String) -> String {
            #"{"services": \#(services), "inbounds": [{"port": 1, "protocol": "vmess", "settings": {"users": ["\#(Self.uuid)"]}}]}"#
        }
        assertError(v5(#"{"observatory": {}}"#), #"v5 service "observatory" is not supported"#)
        assertError(v5(#"{"commander": {"tag": "api", "name": ["router"]}}"#), #"gRPC service "router" is not supported"#)
        assertError(v5(#"{"commander": {"tag": "api", "name": ["LoggerService"]}}"#), "proxyman")
        assertError(v5(#"{"commander": {"name": ["stats"]}}"#), "tag")
        assertError(v5(#"{"policy": {"level": {"0": {"timeout": {"handshake": 4}}}}}"#), "handshake")
        assertError(v5(#"{"policy": {"level": {"0": {"buffer": {"connection": -1}}}}}"#), "connection")
        assertError(v5(#"{"stats": {"x": 1}}"#), "x")
    }

    /// Xray's online users: only with `"stats": {}`, only for the levels that ask.
    func testOnlineLevels() throws {
        let config = try parse(#"{"stats": {}, "policy": {"levels": {"0": {"statsUserOnline": true}, "1": {}}}}"#)
        let switches = StatSwitches(config)
        XCTAssertEqual(switches.onlineLevels, [0])
        XCTAssertTrue(switches.online(email: "a@b", level: 0))
        XCTAssertFalse(switches.online(email: nil, level: 0))
        XCTAssertFalse(switches.online(email: "a@b", level: 1))
        XCTAssertEqual(StatSwitches(try parse(#"{"policy": {"levels": {"0": {"statsUserOnline": true}}}}"#)).onlineLevels, [])
        XCTAssertEqual(StatName.onlineEmail("user>>>a@b>>>online"), "a@b")
        XCTAssertNil(StatName.onlineEmail("user>>>a@b>>>traffic>>>uplink"))
        XCTAssertNil(StatName.onlineEmail("user>>>>>>online"))
    }

    func testStatNamesAreKeptWhole() {
        let long = String(repeating: "e", count: StatName.maximumPartBytes + 1)
        assertError(#"{"stats": {}, "inbounds": [{"port": 1, "protocol": "vmess", "settings": {"clients": [{"id": "\#(Self.uuid)", "email": "\#(long)"}]}}]}"#,
                    "email too long for a statistics name")
        XCTAssertEqual(StatName.outbound(String(long.dropLast()), .downlink).utf8.count, StatName.maximumBytes)
    }

    func testRuntimeUsersAddRemoveAndApply() throws {
        let config = try parse(operatorConfig())
        var users = RuntimeUsers()
        let bob = VMessUser(id: "A4F5E2B8-0000-4000-8000-000000000001", level: 0, email: "bob")
        try users.add(bob, toInbound: "vmess-in", in: config)
        XCTAssertThrowsError(try users.add(bob, toInbound: "vmess-in", in: config)) { XCTAssertEqual($0 as? RuntimeUsers.Failure, .exists("bob")) }
        XCTAssertThrowsError(try users.add(VMessUser(id: Self.uuid), toInbound: "vmess-in", in: config))  // no email
        XCTAssertThrowsError(try users.add(bob, toInbound: "nope", in: config)) { XCTAssertEqual($0 as? RuntimeUsers.Failure, .noInbound("nope")) }
        XCTAssertThrowsError(try users.add(VMessUser(id: "x", email: "c"), toInbound: "vmess-in", in: config))
        // Ids are kept canonical (lower case), whatever the caller sent.
        XCTAssertEqual(try users.users("vmess-in", in: config).map(\.id), [Self.uuid, "a4f5e2b8-0000-4000-8000-000000000001"])
        // Removing a file user hides it; removing an added one forgets it.
        try users.remove(email: "alice@example.com", fromInbound: "vmess-in", in: config)
        try users.remove(email: "bob", fromInbound: "vmess-in", in: config)
        XCTAssertThrowsError(try users.remove(email: "bob", fromInbound: "vmess-in", in: config)) { XCTAssertEqual($0 as? RuntimeUsers.Failure, .notFound("bob")) }
        XCTAssertEqual(users.inbounds["vmess-in"]?.added, [])
        XCTAssertEqual(users.inbounds["vmess-in"]?.removed, ["alice@example.com"])
        try users.add(bob, toInbound: "vmess-in", in: config)
        let applied = users.applied(to: config)
        guard case .vmess(let settings) = applied.inbounds[0].settings else { return XCTFail("not vmess") }
        XCTAssertEqual(settings.users.map(\.email), ["bob"])
        // What a state file holds survives a round trip.
        let decoded = try JSONDecoder().decode(RuntimeUsers.self, from: try JSONEncoder().encode(users))
        XCTAssertEqual(decoded, users)
    }
}
