// Routing with the real V2Ray 4.34 client through vmessd (issue 8): the rule almost every published
// server config has (geoip:private to a blackhole) and rules by domain and by user, each observed by
// where the bytes went. Freedom outbounds `redirect` to loopback echo targets, so "public" addresses
// need no network: whichever target answers tells which outbound was chosen.
//
//   v2ray client (dokodemo-door to ADDRESS:PORT) ──VMess──▶ vmessd ──rules──▶ direct   → echo "direct"
//                                                                         ├─▶ special  → echo "special"
//                                                                         └─▶ block (blackhole)

import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class RoutingTests: EndToEndTestCase {
    func testPrivateAddressesAreBlockedWhileRulesByDomainAndUserRouteTheRest() throws {
        let direct = try makeEchoServer()
        let special = try makeEchoServer()
        let alice = VMessTestUser("alice@example.com")
        let bob = VMessTestUser("bob@example.com")
        let extra: [String: Any] = [
            "outbounds": [
                ["protocol": "freedom", "tag": "direct", "settings": ["redirect": "127.0.0.1:\(direct.port)"]],
                ["protocol": "blackhole", "tag": "block", "settings": [String: Any]()],
                ["protocol": "freedom", "tag": "special", "settings": ["redirect": "127.0.0.1:\(special.port)"]],
            ],
            "routing": [
                "domainStrategy": "AsIs",
                "rules": [
                    ["type": "field", "domain": ["full:special.example", "keyword:tracker"], "outboundTag": "special"],
                    ["type": "field", "user": ["bob@example.com"], "port": "1000-2000", "outboundTag": "special"],
                    ["type": "field", "ip": ["geoip:private"], "outboundTag": "block"],
                ],
            ],
        ]
        let server = try startVMessd(users: [alice, bob], workers: 1, extra: extra)
        let payload = randomData(32 * 1024)

        func roundTrip(_ user: VMessTestUser, _ address: String, _ port: UInt16) throws -> Bool {
            let client = try startClient(serverPort: server.port, user: user, targetPort: port, targetAddress: address)
            defer { client.process.terminate(grace: 1) }
            return (try? ShortConnectionLoad.roundTrip(port: client.port, payload: payload, label: address, timeout: 5)) != nil
        }

        // Public-looking addresses go to the first outbound.
        XCTAssertTrue(try roundTrip(alice, "93.184.216.34", 80))
        XCTAssertEqual(direct.connectionCount, 1)
        // A domain rule, by full name and by keyword.
        XCTAssertTrue(try roundTrip(alice, "special.example", 443))
        XCTAssertTrue(try roundTrip(alice, "ads.tracker.example", 443))
        XCTAssertEqual(special.connectionCount, 2)
        // A user rule (with a port range): bob's request goes elsewhere than alice's identical one.
        XCTAssertTrue(try roundTrip(bob, "93.184.216.34", 1500))
        XCTAssertEqual(special.connectionCount, 3)
        XCTAssertTrue(try roundTrip(alice, "93.184.216.34", 1500))
        XCTAssertEqual(direct.connectionCount, 2)
        // geoip:private: loopback and RFC 1918 destinations reach no target at all.
        for address in ["127.0.0.1", "10.1.2.3", "192.168.0.1"] {
            XCTAssertFalse(try roundTrip(alice, address, direct.port), "\(address) must be blocked")
        }
        XCTAssertEqual(direct.connectionCount, 2)
        XCTAssertEqual(special.connectionCount, 3)
    }

    /// A balancer picks at random among the outbounds whose tag starts with one of its selectors.
    func testBalancerSpreadsOverTheSelectedOutbounds() throws {
        let first = try makeEchoServer()
        let second = try makeEchoServer()
        let unused = try makeEchoServer()
        let user = VMessTestUser("carol@example.com")
        let extra: [String: Any] = [
            "outbounds": [
                ["protocol": "freedom", "tag": "direct", "settings": ["redirect": "127.0.0.1:\(unused.port)"]],
                ["protocol": "freedom", "tag": "pool-a", "settings": ["redirect": "127.0.0.1:\(first.port)"]],
                ["protocol": "freedom", "tag": "pool-b", "settings": ["redirect": "127.0.0.1:\(second.port)"]],
            ],
            "routing": [
                "rules": [["type": "field", "network": "tcp", "balancerTag": "pool"]],
                "balancers": [["tag": "pool", "selector": ["pool-"]]],
            ],
        ]
        let server = try startVMessd(users: [user], workers: 1, extra: extra)
        let client = try startClient(serverPort: server.port, user: user, targetPort: 80, targetAddress: "93.184.216.34")
        for i in 0..<24 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(1024), label: "balanced \(i)", timeout: 10)
        }
        XCTAssertEqual(first.connectionCount + second.connectionCount, 24)
        XCTAssertGreaterThan(first.connectionCount, 0, "random over both (1 in 2^23 to fail by chance)")
        XCTAssertGreaterThan(second.connectionCount, 0)
        XCTAssertEqual(unused.connectionCount, 0)
    }
}

/// `port` as a range or list (issue 8): one VMess inbound listening on every port it names, each
/// served by the real binary to the v2ray client, and routed by the inbound's one tag.
final class PortRangeTests: EndToEndTestCase {
    func testAnInboundListensOnEveryPortOfItsRange() throws {
        let echo = try makeEchoServer()
        let tagged = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let ports = try FreePort.tcpRange(3)
        let extra: [String: Any] = [
            "inbounds": [[
                "port": "\(ports.lowerBound)-\(ports.upperBound)", "listen": "127.0.0.1", "protocol": "vmess", "tag": "ranged",
                "settings": ["clients": [user.serverJSON]],
            ]],
            "outbounds": [
                ["protocol": "freedom", "tag": "direct"],
                ["protocol": "freedom", "tag": "by-tag", "settings": ["redirect": "127.0.0.1:\(tagged.port)"]],
            ],
            "routing": ["rules": [["type": "field", "inboundTag": ["ranged"], "port": Int(echo.port) + 1, "outboundTag": "by-tag"]]],
        ]
        let server = try startVMessd(users: [user], workers: 2, port: ports.lowerBound, extra: extra)
        for port in ports {
            let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "port \(port)", timeout: 10)
            client.process.terminate(grace: 1)
        }
        XCTAssertEqual(echo.connectionCount, 3, "one connection through each port")
        // The rule on the inbound's tag holds on every port of the range.
        let client = try startClient(serverPort: ports.upperBound, user: user, targetPort: echo.port + 1)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(4096), label: "by tag", timeout: 10)
        XCTAssertEqual(tagged.connectionCount, 1)
        XCTAssertTrue(server.process.isRunning)
    }
}

/// Dynamic port (issue 8), vmessd as the server: the main inbound's `detour` answers every handshake
/// with a switch-account command to the detour inbound (a port range, `default` level and alterId);
/// the real v2ray 4.34 client takes it and its next connections arrive on the detour ports, with the id
/// vmessd derived for the user. Routing by inbound tag shows where each connection came in.
final class DynamicPortTests: EndToEndTestCase {
    func testTheV2RayClientMovesToTheDetourInbound() throws {
        let main = try makeEchoServer()
        let detoured = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let port = try FreePort.tcp()
        let range = try FreePort.tcpRange(3)
        let extra = DynamicPortConfig.sections(mainPort: port, detourPorts: range, client: user.serverJSON,
                                               mainTarget: main.port, detourTarget: detoured.port)
        let server = try startVMessd(users: [user], workers: 2, port: port, extra: extra)
        let client = try startClient(serverPort: port, user: user, targetPort: 9)
        for i in 0..<8 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(16 * 1024), label: "connection \(i)", timeout: 10)
        }
        XCTAssertGreaterThanOrEqual(main.connectionCount, 1, "the first connection uses the configured port")
        XCTAssertGreaterThanOrEqual(detoured.connectionCount, 1,
                                    "after the switch-account command the client must use the detour ports (main \(main.connectionCount))")
        XCTAssertEqual(main.connectionCount + detoured.connectionCount, 8)
        XCTAssertTrue(server.process.isRunning)
    }

    /// allocate "random": two of four ports listen; each reload (and each `refresh`) chooses again,
    /// while a stream that came in on a detour port goes on through every change, and the client is
    /// always sent to a port that listens.
    func testRandomAllocationListensOnConcurrencyPortsAndMovesOnReload() throws {
        let main = try makeEchoServer()
        let detoured = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let port = try FreePort.tcp()
        let range = try FreePort.tcpRange(4)
        let extra = DynamicPortConfig.sections(mainPort: port, detourPorts: range, client: user.serverJSON,
                                               mainTarget: main.port, detourTarget: detoured.port,
                                               allocate: ["strategy": "random", "refresh": 5, "concurrency": 2])
        let server = try startVMessd(users: [user], workers: 2, port: port, extra: extra)
        func listening() -> Set<UInt16> {
            Set(range.filter { p in
                guard let fd = try? Sock.connect(port: p) else { return false }
                close(fd)
                return true
            })
        }
        let first = listening()
        XCTAssertEqual(first.count, 2, "concurrency 2 of 4 ports: \(first.sorted())")

        // The client's first connection is told a listening detour port; V2Ray's client then takes
        // turns between that and the configured one, so of four streams some run on a detour port.
        let client = try startClient(serverPort: port, user: user, targetPort: 9)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(4096), label: "first", timeout: 10)
        let streams = try (0..<4).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        XCTAssertGreaterThanOrEqual(detoured.connectionCount, 1, "a stream came in on a detour port")

        var moved = false
        for _ in 0..<8 where !moved {
            let readyBefore = server.notify.count("READY=1")
            XCTAssertEqual(kill(server.pid, SIGHUP), 0)
            XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: readyBefore + 1, timeout: 30))
            try eventually("two detour ports listen after the reload") { listening().count == 2 }
            moved = listening() != first
        }
        XCTAssertTrue(moved, "eight reloads never chose other ports")
        for stream in streams {
            let rounds = stream.state.rounds
            XCTAssertTrue(stream.waitForRounds(rounds + 3), "\(stream.label) must go on: \(stream.state)")
            XCTAssertNil(stream.stop().failure, stream.label)
        }
        // New connections still work, wherever the client is sent.
        for i in 0..<4 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(4096), label: "after \(i)", timeout: 10)
        }
    }

    /// The `refresh` itself: with refresh 1 (minute) the supervisor chooses again on its own, without
    /// a SIGHUP, through an ordinary reload (a new generation), and the config file is not read again.
    func testRandomAllocationRefreshesByItself() throws {
        let user = VMessTestUser("alice@example.com")
        let port = try FreePort.tcp()
        let range = try FreePort.tcpRange(3)
        let extra = DynamicPortConfig.sections(mainPort: port, detourPorts: range, client: user.serverJSON,
                                               mainTarget: 9, detourTarget: 9,
                                               allocate: ["strategy": "random", "refresh": 1, "concurrency": 1])
        let server = try startVMessd(users: [user], workers: 1, port: port, extra: extra)
        XCTAssertEqual(try status(server).generation, 1)
        // An edit the refresh must not pick up (it would be an error anyway: not JSON).
        try writeFile((server.configPath as NSString).lastPathComponent, "not json")
        try eventually("a refresh within two minutes", timeout: 150) { try status(server).generation >= 2 }
        XCTAssertEqual(range.filter { p in (try? Sock.connect(port: p)).map { close($0); return true } ?? false }.count, 1)
        XCTAssertTrue(server.notify.count("RELOADING=1") >= 1)
    }
}
