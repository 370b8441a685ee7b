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
                   daemon: [String: Any]? = nil) -> String {
        var user = alice.json
        user["email"] = "alice@example.com"
        var object: [String: Any] = [
            "log": log,
            "stats": [String: Any](),
            "api": ["tag": "api", "services": ["HandlerService", "LoggerService", "StatsService"]],
            "policy": [
                "levels": ["0": ["statsUserUplink": true, "statsUserDownlink": true]],
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
               log: [String: Any] = ["loglevel": "info"], daemon: [String: Any]? = nil) throws -> Setup {
        let port = try FreePort.tcp()
        var apiPort = try FreePort.tcp()
        while apiPort == port { apiPort = try FreePort.tcp() }
        let server = try startServer(kind, port: port,
                                     config: apiConfig(port: port, apiPort: apiPort, alice: alice, log: log,
                                                       daemon: kind == .vmessd ? daemon : nil))
        try waitForTCPPort(apiPort, timeout: Self.startupTimeout, stillAlive: { server.process.isRunning })
        return Setup(server: server, api: APIClient(server: "127.0.0.1:\(apiPort)", workDir: workDir), alice: alice,
                     echo: try makeEchoServer())
    }

    /// Polls until `condition` holds (the workers publish their counts once a second).
    func eventually(_ what: String, timeout: TimeInterval = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return }
            guard Date() < deadline else { throw HarnessError("\(what): not within \(Int(timeout)) s") }
            usleep(100_000)
        }
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
        let expected: [String: Int64] = [
            "user>>>alice@example.com>>>traffic>>>uplink": total, "user>>>alice@example.com>>>traffic>>>downlink": total,
            "inbound>>>vmess-in>>>traffic>>>uplink": total, "inbound>>>vmess-in>>>traffic>>>downlink": total,
            "outbound>>>direct>>>traffic>>>uplink": total, "outbound>>>direct>>>traffic>>>downlink": total,
        ]
        var stats: [String: Int64] = [:]
        do {
            try eventually("every counter equals the bytes carried") {
                stats = try s.api.queryStats()
                return expected.allSatisfy { stats[$0.key] == $0.value }
            }
        } catch {
            XCTFail("\(error): QueryStats returned \(stats)")
        }
        // A pattern is a substring; reset returns the values and zeroes them.
        XCTAssertEqual(Set(try s.api.queryStats(pattern: ">>>alice@").keys),
                       ["user>>>alice@example.com>>>traffic>>>uplink", "user>>>alice@example.com>>>traffic>>>downlink"])
        let one = try s.api.v2ctl("StatsService.GetStats", #"name: "inbound>>>vmess-in>>>traffic>>>uplink" reset: true"#)
        XCTAssertEqual(APIClient.parseStats(one)["inbound>>>vmess-in>>>traffic>>>uplink"], total)
        XCTAssertEqual(try s.api.queryStats(pattern: "inbound>>>vmess-in>>>traffic>>>uplink")["inbound>>>vmess-in>>>traffic>>>uplink"], 0)
        // A counter that never counted anything does not exist, as in the reference.
        XCTAssertThrowsError(try s.api.v2ctl("StatsService.GetStats", #"name: "user>>>nobody>>>traffic>>>uplink""#)) { error in
            XCTAssertTrue("\(error)".contains("not found"), "\(error)")
        }
        XCTAssertTrue(try s.api.v2ctl("StatsService.GetSysStats", "").contains("Uptime") || s.server.kind == .vmessd)
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
        let removedAt = Date()
        Sock.setTimeouts(open, seconds: 0.25)
        let after = try Sock.read(open, count: 1, deadline: Date().addingTimeInterval(10), what: "bob's connection after removal")
        let took = Date().timeIntervalSince(removedAt)
        XCTAssertTrue(after.eof, "bob's connection must end")
        XCTAssertLessThan(took, 2.0, "ended \(took) s after the removal")
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

        // A restart (a new process, the same state directory) brings the same users back.
        first.server.process.terminate()
        let second = try start(alice: alice, daemon: ["stateDirectory": state])
        XCTAssertEqual(try second.api.users(inbound: "vmess-in").map { $0[0] }, ["bob@example.com"])
        let bobAgain = try startClient(server: second.server, user: bob, targetPort: second.echo.port)
        try echoRoundTrip(port: bobAgain.dokodemoPort, payload: randomData(10_000), label: "bob after restart")
        let aliceClient = try startClient(server: second.server, user: alice, targetPort: second.echo.port)
        XCTAssertThrowsError(try echoRoundTrip(port: aliceClient.dokodemoPort, payload: randomData(1000), label: "alice (removed)", timeout: 5))
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
            try connectAndFind("accepted", in: access, "after \(trigger)")
            try eventually("the supervisor's line in the new error log after \(trigger)") {
                ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").contains("log files reopened")
            }
        }
        assertRunning(s.server.process, client.process)
    }

    private func runVMessdCtl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try VMessdBinaries.vmessd())
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
