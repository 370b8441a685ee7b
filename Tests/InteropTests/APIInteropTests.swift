// The V2Ray/Xray gRPC API (issue 10) with real clients: Debian's `v2ctl api` for StatsService and
// LoggerService, a Python grpcio client for HandlerService and Xray's methods (APIClient). The server
// config is an operator's: `stats`, `api` with a dokodemo-door inbound routed to it, the policy's
// statistics switches. The stats test runs against the reference too (INTEROP_SERVER=v2ray): the
// counters must match the bytes carried exactly, in both.

import Foundation
import Glibc
import TestSupport
import XCTest

final class APIInteropTests: InteropTestCase {
    struct Setup {
        var server: RunningServer
        var api: APIClient
        var alice: VMessTestUser
        var echo: EchoServer
    }

    /// An operator's config: vmess inbound "vmess-in" (user alice@example.com), freedom "direct",
    /// the API on a dokodemo-door routed to tag "api", every statistics switch on.
    func apiConfig(port: UInt16, apiPort: UInt16, alice: VMessTestUser, log: [String: Any] = ["loglevel": "info"],
                   daemon: [String: Any]? = nil, online: Bool = false) -> String {
        var user = alice.json
        user["email"] = "alice@example.com"
        var object: [String: Any] = [
            "log": log,
            "stats": [String: Any](),
            "api": ["tag": "api", "services": ["HandlerService", "LoggerService", "StatsService"]],
            "policy": [
                "levels": ["0": ["statsUserUplink": true, "statsUserDownlink": true, "statsUserOnline": online]],
                "system": ["statsInboundUplink": true, "statsInboundDownlink": true,
                           "statsOutboundUplink": true, "statsOutboundDownlink": true],
            ],
            "inbounds": [
                ["listen": "127.0.0.1", "port": Int(apiPort), "protocol": "dokodemo-door",
                 "settings": ["address": "127.0.0.1"], "tag": "api"],
                ["listen": "127.0.0.1", "port": Int(port), "protocol": "vmess", "tag": "vmess-in",
                 "settings": ["clients": [user]]],
            ],
            "outbounds": [["protocol": "freedom", "tag": "direct"]],
            "routing": ["rules": [["type": "field", "inboundTag": ["api"], "outboundTag": "api"]]],
        ]
        if let daemon { object["vmessd"] = daemon }
        return TestConfigs.json(object)
    }

    func start(_ kind: ServerKind = .underTest, alice: VMessTestUser = VMessTestUser(security: "aes-128-gcm"),
               log: [String: Any] = ["loglevel": "info"], daemon: [String: Any]? = nil, online: Bool = false) throws -> Setup {
        let port = try FreePort.tcp()
        var apiPort = try FreePort.tcp()
        while apiPort == port { apiPort = try FreePort.tcp() }
        let server = try startServer(kind, port: port,
                                     config: apiConfig(port: port, apiPort: apiPort, alice: alice, log: log,
                                                       daemon: kind == .vmessd ? daemon : nil, online: online))
        try waitForTCPPort(apiPort, timeout: Self.startupTimeout, stillAlive: { server.process.isRunning })
        return Setup(server: server, api: APIClient(server: "127.0.0.1:\(apiPort)", workDir: workDir), alice: alice,
                     echo: try makeEchoServer())
    }

    // MARK: StatsService

    func testStatsCountTheBytesCarriedExactly() throws {
        let s = try start()
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        let sizes = [100_000, 31_337, 1]
        for (i, size) in sizes.enumerated() {
            try echoRoundTrip(port: client.dokodemoPort, payload: randomData(size), label: "transfer \(i)")
        }
        let total = Int64(sizes.reduce(0, +))
        // Users and (freedom) outbounds count the payload; an inbound counts what crossed its
        // connection, VMess headers and chunk framing included (the reference counts there too), so a
        // little more than the payload.
        let payload: [String: Int64] = [
            "user>>>alice@example.com>>>traffic>>>uplink": total, "user>>>alice@example.com>>>traffic>>>downlink": total,
            "outbound>>>direct>>>traffic>>>uplink": total, "outbound>>>direct>>>traffic>>>downlink": total,
        ]
        let wire = ["inbound>>>vmess-in>>>traffic>>>uplink", "inbound>>>vmess-in>>>traffic>>>downlink"]
        func framed(_ value: Int64?) -> Bool { value.map { $0 > total && $0 < total + total / 10 + 4096 } ?? false }
        var stats: [String: Int64] = [:]
        do {
            try eventually("every counter matches the bytes carried") {
                stats = try s.api.queryStats()
                return payload.allSatisfy { stats[$0.key] == $0.value } && wire.allSatisfy { framed(stats[$0]) }
            }
        } catch {
            XCTFail("\(error): QueryStats returned \(stats)")
        }
        let wireUp = stats[wire[0]] ?? 0
        // A pattern is a substring; reset returns the values and zeroes them.
        XCTAssertEqual(Set(try s.api.queryStats(pattern: ">>>alice@").keys),
                       ["user>>>alice@example.com>>>traffic>>>uplink", "user>>>alice@example.com>>>traffic>>>downlink"])
        let one = try s.api.v2ctl("StatsService.GetStats", #"name: "user>>>alice@example.com>>>traffic>>>uplink" reset: true"#)
        XCTAssertEqual(APIClient.parseStats(one)["user>>>alice@example.com>>>traffic>>>uplink"], total)
        XCTAssertEqual(try s.api.queryStats(pattern: "user>>>alice@example.com>>>traffic>>>uplink")["user>>>alice@example.com>>>traffic>>>uplink"], 0)
        XCTAssertEqual(try s.api.queryStats(pattern: wire[0], reset: true)[wire[0]], wireUp)
        XCTAssertEqual(try s.api.queryStats(pattern: wire[0])[wire[0]], 0)
        // A counter that never counted anything does not exist, as in the reference.
        XCTAssertThrowsError(try s.api.v2ctl("StatsService.GetStats", #"name: "user>>>nobody>>>traffic>>>uplink""#)) { error in
            XCTAssertTrue("\(error)".contains("not found"), "\(error)")
        }
        // v2ctl prints the non-zero fields: processes (goroutines in the reference) and memory.
        let sys = try s.api.v2ctl("StatsService.GetSysStats", "")
        XCTAssertTrue(sys.contains("NumGoroutine: ") && sys.contains("Sys: "), sys)
        assertRunning(s.server.process, client.process)
    }

    /// The same API from a v5 config (services stats, policy and commander, the API inbound routed in
    /// v5's router), read with v2ctl.
    func testV5ConfigServesTheAPI() throws {
        let user = VMessTestUser(security: "aes-128-gcm")
        let port = try FreePort.tcp()
        var apiPort = try FreePort.tcp()
        while apiPort == port { apiPort = try FreePort.tcp() }
        let config = TestConfigs.json([
            "services": [
                "stats": [String: Any](),
                "policy": ["system": ["stats": ["inboundUplink": true, "inboundDownlink": true,
                                                 "outboundUplink": true, "outboundDownlink": true]]],
                "commander": ["tag": "api", "name": ["stats", "proxyman"]],
            ],
            "inbounds": [
                ["listen": "127.0.0.1", "port": Int(apiPort), "protocol": "dokodemo-door", "tag": "api",
                 "settings": ["address": "127.0.0.1", "networks": ["tcp"]]],
                ["listen": "127.0.0.1", "port": Int(port), "protocol": "vmess", "tag": "vmess-in",
                 "settings": ["users": [user.id]]],
            ],
            "outbounds": [["protocol": "freedom", "tag": "direct"]],
            "router": ["rule": [["inboundTag": ["api"], "tag": "api"]]],
        ])
        let server = try startServer(.vmessd, port: port, config: config)
        try waitForTCPPort(apiPort, timeout: Self.startupTimeout, stillAlive: { server.process.isRunning })
        let api = APIClient(server: "127.0.0.1:\(apiPort)", workDir: workDir)
        let echo = try makeEchoServer()
        let client = try startClient(server: server, user: user, targetPort: echo.port)
        try echoRoundTrip(port: client.dokodemoPort, payload: randomData(50_000), label: "v5 config transfer")
        var stats: [String: Int64] = [:]
        do {
            try eventually("the v5 config's counters count") {
                stats = try api.queryStats()
                return stats["outbound>>>direct>>>traffic>>>uplink"] == 50_000 && stats["outbound>>>direct>>>traffic>>>downlink"] == 50_000
                    && (stats["inbound>>>vmess-in>>>traffic>>>downlink"] ?? 0) > 50_000
            }
        } catch {
            XCTFail("\(error): QueryStats returned \(stats)")
        }
        // HandlerService ("proxyman") is served; LoggerService has no v5 name, so it is not.
        XCTAssertEqual(try api.userCount(inbound: "vmess-in"), 1)
        assertRunning(server.process, client.process)
    }

    /// Xray's online users (`statsUserOnline`): the addresses of a user's open connections, on
    /// whichever worker they are, gone a few seconds after the last one ends.
    func testXrayOnlineUsers() throws {
        let s = try start(online: true)
        let name = "user>>>alice@example.com>>>online"
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        // Before any connection: the entry exists (alice's level keeps addresses) and is empty.
        XCTAssertEqual(try s.api.onlineCount(name), 0)
        XCTAssertEqual(try s.api.onlineUsers(), [])
        let fds = try (0..<3).map { i -> Int32 in
            let fd = try Sock.connect(port: client.dokodemoPort)
            try echoOnce(fd, label: "connection \(i)")
            return fd
        }
        XCTAssertEqual(try s.api.onlineCount(name), 1, "three connections from one address")
        let addresses = try s.api.onlineAddresses(name)
        XCTAssertEqual(Array(addresses.keys), ["127.0.0.1"])
        let now = Int(Date().timeIntervalSince1970)
        XCTAssertLessThanOrEqual(abs((addresses["127.0.0.1"] ?? 0) - now), 5, "last seen is unix seconds: \(addresses)")
        XCTAssertEqual(try s.api.onlineUsers(), [name])
        // Names that are no online entry get Xray's answer.
        for unknown in ["user>>>nobody@example.com>>>online", "user>>>alice@example.com>>>traffic>>>uplink"] {
            XCTAssertThrowsError(try s.api.onlineCount(unknown)) { error in
                XCTAssertEqual((error as? APIClient.CallError)?.code, "NOT_FOUND", "\(error)")
            }
        }
        fds.forEach { close($0) }
        try eventually("the address leaves after the connections end") { try s.api.onlineUsers().isEmpty }
        XCTAssertEqual(try s.api.onlineCount(name), 0)
        assertRunning(s.server.process, client.process)
    }

    // MARK: HandlerService

    func testUsersAddedAndRemovedAtRuntimeOnEveryWorker() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's runtime users (GetInboundUsers is Xray's; V2Ray 4.34 keeps removed users' connections)") }
        let s = try start()
        let bob = VMessTestUser(security: "aes-128-gcm")
        let bobClient = try startClient(server: s.server, user: bob, targetPort: s.echo.port)
        XCTAssertThrowsError(try echoRoundTrip(port: bobClient.dokodemoPort, payload: randomData(1000), label: "bob before", timeout: 5))

        try s.api.addUser(inbound: "vmess-in", email: "bob@example.com", id: bob.id)
        // Within a second, on every worker (two here): several connections, each served.
        usleep(1_000_000)
        for i in 0..<6 {
            try echoRoundTrip(port: bobClient.dokodemoPort, payload: randomData(20_000), label: "bob \(i)")
        }
        XCTAssertEqual(try s.api.users(inbound: "vmess-in").map { $0[0] }.sorted(), ["alice@example.com", "bob@example.com"])
        XCTAssertEqual(try s.api.users(inbound: "vmess-in").first { $0[0] == "bob@example.com" }?[1], bob.id)
        XCTAssertEqual(try s.api.userCount(inbound: "vmess-in"), 2)
        // Mistakes get gRPC status codes, and change nothing.
        XCTAssertThrowsError(try s.api.addUser(inbound: "vmess-in", email: "alice@example.com", id: bob.id)) {
            XCTAssertEqual(($0 as? APIClient.CallError)?.code, "ALREADY_EXISTS", "\($0)")
        }
        XCTAssertThrowsError(try s.api.addUser(inbound: "nope", email: "carol", id: bob.id)) {
            XCTAssertEqual(($0 as? APIClient.CallError)?.code, "NOT_FOUND", "\($0)")
        }
        XCTAssertThrowsError(try s.api.addUser(inbound: "vmess-in", email: "carol", id: "not-a-uuid", dialect: "xray")) {
            XCTAssertEqual(($0 as? APIClient.CallError)?.code, "INVALID_ARGUMENT", "\($0)")
        }

        // Removing bob ends his open connection, on whichever worker holds it, within a second.
        let open = try Sock.connect(port: bobClient.dokodemoPort)
        defer { close(open) }
        let probe = randomData(4096)
        try Sock.writeAll(open, probe, deadline: Date().addingTimeInterval(10))
        let echoed = try Sock.read(open, count: probe.count, deadline: Date().addingTimeInterval(10), what: "bob's long connection")
        XCTAssertEqual(echoed.data, probe)
        try s.api.removeUser(inbound: "vmess-in", email: "bob@example.com", dialect: "xray")
        // vmessd closes bob's VMess connection at once; the v2ray client in between keeps its local
        // side open until it next tries to forward something (its uplinkOnly timer is 20 s here), so
        // the test keeps sending: nothing may come back, and the connection must end.
        usleep(1_000_000)
        Sock.setTimeouts(open, seconds: 0.2)
        var ended = false
        var echoedAfter = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<25 where !ended {
            if send(open, [UInt8](repeating: 7, count: 16), 16, Int32(MSG_NOSIGNAL)) < 0 { ended = true; break }
            switch try? buffer.withUnsafeMutableBytes({ try Sock.readSome(open, $0) }) {
            case .data(let n)?: echoedAfter += n
            case .eof?, nil: ended = true
            case .wouldBlock?: break
            }
        }
        XCTAssertTrue(ended, "bob's connection must end once he is removed")
        XCTAssertEqual(echoedAfter, 0, "nothing may be relayed for a removed user")
        XCTAssertThrowsError(try echoRoundTrip(port: bobClient.dokodemoPort, payload: randomData(1000), label: "bob after", timeout: 5))
        XCTAssertEqual(try s.api.userCount(inbound: "vmess-in"), 1)
        // Alice, from the config file, was never disturbed.
        let aliceClient = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        try echoRoundTrip(port: aliceClient.dokodemoPort, payload: randomData(10_000), label: "alice")
        assertRunning(s.server.process)
    }

    func testRuntimeUsersSurviveReloadAndRestart() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's state directory") }
        let state = workDir.appendingPathComponent("state").path
        let alice = VMessTestUser(security: "aes-128-gcm")
        let bob = VMessTestUser(security: "chacha20-poly1305")
        let first = try start(alice: alice, daemon: ["stateDirectory": state])
        try first.api.addUser(inbound: "vmess-in", email: "bob@example.com", id: bob.id)
        // Alice is removed through the API: she stays removed although the file still has her.
        try first.api.removeUser(inbound: "vmess-in", email: "alice@example.com")
        let saved = try String(contentsOfFile: state + "/users.json", encoding: .utf8)
        XCTAssertTrue(saved.contains(bob.id), saved)

        // A reload re-reads the file; the runtime changes still apply.
        let control = try XCTUnwrap(first.server.control)
        let reload = try runVMessdCtl(["ctl", "--control", control, "reload"])
        XCTAssertEqual(reload.status, 0, reload.output)
        let bobClient = try startClient(server: first.server, user: bob, targetPort: first.echo.port)
        try echoRoundTrip(port: bobClient.dokodemoPort, payload: randomData(10_000), label: "bob after reload")
        XCTAssertEqual(try first.api.users(inbound: "vmess-in").map { $0[0] }, ["bob@example.com"])

        // `vmessd ctl users` makes the same changes over the admin socket.
        let carol = VMessTestUser(security: "aes-128-gcm")
        let added = try runVMessdCtl(["ctl", "--control", control, "users", "add", "vmess-in", "carol@example.com", carol.id])
        XCTAssertEqual(added.status, 0, added.output)
        let listed = try runVMessdCtl(["ctl", "--control", control, "users", "list", "vmess-in"])
        XCTAssertTrue(listed.output.contains("carol@example.com") && listed.output.contains(carol.id), listed.output)
        let carolClient = try startClient(server: first.server, user: carol, targetPort: first.echo.port)
        try echoRoundTrip(port: carolClient.dokodemoPort, payload: randomData(10_000), label: "carol")
        let removed = try runVMessdCtl(["ctl", "--control", control, "users", "remove", "vmess-in", "carol@example.com"])
        XCTAssertEqual(removed.status, 0, removed.output)
        let again = try runVMessdCtl(["ctl", "--control", control, "users", "remove", "vmess-in", "carol@example.com"])
        XCTAssertNotEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("not found"), again.output)

        // A restart (a new process, the same state directory) brings the same users back.
        first.server.process.terminate()
        let second = try start(alice: alice, daemon: ["stateDirectory": state])
        XCTAssertEqual(try second.api.users(inbound: "vmess-in").map { $0[0] }, ["bob@example.com"])
        let bobAgain = try startClient(server: second.server, user: bob, targetPort: second.echo.port)
        try echoRoundTrip(port: bobAgain.dokodemoPort, payload: randomData(10_000), label: "bob after restart")
        let aliceClient = try startClient(server: second.server, user: alice, targetPort: second.echo.port)
        XCTAssertThrowsError(try echoRoundTrip(port: aliceClient.dokodemoPort, payload: randomData(1000), label: "alice (removed)", timeout: 5))
    }

    /// users.json is replaced by rename after an fsync: a supervisor killed (SIGKILL) in the middle of
    /// a stream of additions leaves a whole file, the old one or the new one, which the next start reads.
    func testTheUsersFileSurvivesAKillDuringWrites() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's state directory") }
        let state = workDir.appendingPathComponent("state").path
        let alice = VMessTestUser(security: "aes-128-gcm")
        var survivors = 0
        for round in 0..<3 {
            let s = try start(alice: alice, daemon: ["stateDirectory": state])
            let adder = BackgroundTask<Any>("adder-\(round)") { try s.api.handler(["bulk", "vmess-in", "r\(round)", "400"]) }
            // Once this round's additions are being written (the Python client takes a while to start
            // on a busy machine), a moment more, then the kill lands somewhere among the writes.
            let file = state + "/users.json"
            try eventually("round \(round): additions reach the file") {
                let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                return text.contains("r\(round)-")
            }
            usleep(useconds_t(50_000 + 100_000 * round))
            kill(s.server.process.pid, SIGKILL)
            _ = adder.join(timeout: 30)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: state + "/users.json"))
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: bytes) as? [String: Any], "round \(round): a whole JSON object")
            let inbound = (json["inbounds"] as? [String: Any])?["vmess-in"] as? [String: Any]
            let added = (inbound?["added"] as? [Any])?.count ?? 0
            XCTAssertGreaterThan(added, survivors, "round \(round): additions were saved before the kill")
            survivors = added
        }
        // The next start reads the file the last kill left, whole.
        let last = try start(alice: alice, daemon: ["stateDirectory": state])
        XCTAssertEqual(try last.api.userCount(inbound: "vmess-in"), 1 + survivors)
    }

    // MARK: LoggerService

    func testRestartLoggerAndSIGUSR1ReopenTheLogFiles() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's log files") }
        let access = workDir.appendingPathComponent("access.log").path
        let errors = workDir.appendingPathComponent("error.log").path
        let s = try start(log: ["loglevel": "info", "access": access, "error": errors])
        let client = try startClient(server: s.server, user: s.alice, targetPort: s.echo.port)
        func connectAndFind(_ text: String, in path: String, _ label: String) throws {
            try echoRoundTrip(port: client.dokodemoPort, payload: randomData(100), label: label)
            try eventually("\(label): \(text) in \(path)") {
                ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").contains(text)
            }
        }
        try connectAndFind("accepted", in: access, "before rotation")
        for (round, trigger) in ["RestartLogger", "SIGUSR1"].enumerated() {
            // logrotate's rename: the processes still write to the renamed files until told.
            try FileManager.default.moveItem(atPath: access, toPath: access + ".\(round)")
            try FileManager.default.moveItem(atPath: errors, toPath: errors + ".\(round)")
            if trigger == "RestartLogger" {
                _ = try s.api.v2ctl("LoggerService.RestartLogger", "")
            } else {
                kill(s.server.process.pid, SIGUSR1)
            }
            // The supervisor and both workers say so in the new error log (workers act on the
            // supervisor's message, a moment after the call returns).
            try eventually("three reopen lines in the new error log after \(trigger)") {
                ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").components(separatedBy: "log files reopened").count == 4
            }
            try connectAndFind("accepted", in: access, "after \(trigger)")
        }
        assertRunning(s.server.process, client.process)
    }

    private func runVMessdCtl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try APIClient.run(try VMessdBinaries.vmessd(), arguments)
    }
}
