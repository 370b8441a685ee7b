// Reload with the real binaries and the real v2ray client: three SIGHUPs under continuous load lose
// nothing, a user added by a reload works right after it, the old workers finish their streams and
// then exit; an invalid config on SIGHUP changes nothing but the status.

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ReloadTests: EndToEndTestCase {
    override class var testTimeout: TimeInterval { 240 }

    func testThreeReloadsUnderLoadLoseNothing() throws {
        let echo = try makeEchoServer()
        var users = [VMessTestUser("user0@example.com")]
        let server = try startVMessd(users: users, workers: 2, drainTimeout: 90)
        let client = try startClient(serverPort: server.port, user: users[0], targetPort: echo.port)
        let firstWorkers = try status(server).workers.map(\.pid)
        XCTAssertEqual(firstWorkers.count, 2)

        // Several long-lived streams, opened before any reload, and a stream of short connections.
        let streams = try (0..<4).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        let load = ShortConnectionLoad(port: client.port, threads: 2)

        var oldWorkers = Set(firstWorkers)
        for reload in 1...3 {
            usleep(700_000) // load running on the current generation
            let user = VMessTestUser("user\(reload)@example.com")
            users.append(user)
            try writeFile((server.configPath as NSString).lastPathComponent, Self.serverConfig(port: server.port, users: users))
            let readyBefore = server.notify.count("READY=1")
            XCTAssertEqual(kill(server.pid, SIGHUP), 0)
            XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: readyBefore + 1, timeout: 30),
                          "reload \(reload): no READY=1 (\(server.notify.messages))")
            XCTAssertEqual(server.notify.count("RELOADING=1"), reload)

            // The new user works right after READY=1: every worker still accepting runs the new config.
            let newClient = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
            try ShortConnectionLoad.roundTrip(port: newClient.port, payload: randomData(64 * 1024), label: "new user \(reload)")
            newClient.process.terminate()

            let s = try status(server)
            XCTAssertEqual(s.generation, reload + 1)
            let current = s.workers.filter { $0.generation == reload + 1 }
            XCTAssertEqual(current.count, 2)
            XCTAssertTrue(current.allSatisfy { $0.state == "ready" }, "\(s.workers)")
            XCTAssertTrue(s.workers.filter { $0.generation <= reload }.allSatisfy { $0.state == "draining" }, "\(s.workers)")
            oldWorkers.formUnion(s.workers.filter { $0.generation <= reload }.map(\.pid))
        }
        usleep(700_000)

        // Nothing failed: no short connection, no byte of any stream.
        let result = load.stop()
        XCTAssertEqual(result.failures, [], "\(result.failures.count) of \(result.successes + result.failures.count) short connections failed")
        XCTAssertGreaterThan(result.successes, 20)
        // The streams opened on generation 1 are still served by its (draining) workers.
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        XCTAssertTrue(firstWorkers.contains { Self.exists($0) }, "generation 1 must live while its streams do")
        for stream in streams {
            let end = stream.stop()
            XCTAssertNil(end.failure, "\(stream.label) after \(end.rounds) rounds")
            XCTAssertGreaterThan(end.rounds, 20)
        }

        // With their last streams closed, the old workers exit; only generation 4 remains.
        try eventually("old workers exited after draining") {
            let s = try status(server)
            return s.workers.count == 2 && s.workers.allSatisfy { $0.generation == 4 }
        }
        for pid in oldWorkers { XCTAssertFalse(Self.exists(pid), "old worker \(pid) still exists") }
        let statuses = server.notify.statuses
        XCTAssertTrue(statuses.contains { $0.hasPrefix("generation 4: 2/2 workers ready") }, "\(statuses)")
        XCTAssertEqual(try stats(server).reloads, 3)
    }

    func testInvalidConfigOnSIGHUPKeepsServingTheOldOne() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(32 * 1024), label: "before")
        let before = try status(server)

        // 1. Not JSON at all, by SIGHUP.
        let name = (server.configPath as NSString).lastPathComponent
        try writeFile(name, "{ \"inbounds\": [ broken")
        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        try eventually("STATUS= reporting the failed reload") {
            server.notify.statuses.contains { $0.contains("reload failed") && $0.contains(name) }
        }
        XCTAssertEqual(server.notify.count("RELOADING=1"), 0, "an invalid config must not start a reload")
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(32 * 1024), label: "after bad SIGHUP")

        // 2. Valid JSON, invalid config (a bad user id), by `vmessd ctl reload`: exit 1 with the reason.
        var bad = Self.serverConfig(port: server.port, users: [user])
        bad = bad.replacingOccurrences(of: user.id, with: "not-a-uuid")
        try writeFile(name, bad)
        let (code, response) = try ctl(server, "reload")
        XCTAssertEqual(code, 1)
        XCTAssertFalse(response.ok)
        XCTAssertTrue(response.message.contains("reload failed") && response.message.contains("not-a-uuid"), response.message)

        let after = try status(server)
        XCTAssertEqual(after.generation, 1)
        XCTAssertEqual(after.workers.map(\.pid), before.workers.map(\.pid))
        XCTAssertTrue(after.statusText.contains("reload failed"), after.statusText)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(32 * 1024), label: "after bad ctl reload")

        // 3. Fixed: the next reload works and clears the complaint.
        try writeFile(name, Self.serverConfig(port: server.port, users: [user]))
        let (okCode, ok) = try ctl(server, "reload")
        XCTAssertEqual(okCode, 0, ok.message)
        XCTAssertEqual(ok.status?.generation, 2)
        XCTAssertFalse(ok.status?.statusText.contains("reload failed") ?? true)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(32 * 1024), label: "after good reload")
    }

    /// `vmessd.workers` 2 → 3 → 1 by reload under continuous load: every short connection and every
    /// long stream comes back byte for byte. Going down, the surplus sockets stay open and are served
    /// (closing them would reset their queues), and new connections are steered away from them.
    func testWorkerCountTwoThreeOneByReloadUnderLoad() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("count@example.com")
        let port = try FreePort.tcp()
        func config(_ workers: Int) -> String { Self.serverConfig(port: port, users: [user], daemon: ["workers": workers]) }
        let server = try startVMessd(config: config(2), port: port, workers: nil, drainTimeout: 90)
        XCTAssertEqual(try status(server).workers.count, 2)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
        let streams = try (0..<4).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        let load = ShortConnectionLoad(port: client.port, threads: 3)

        for (step, workers) in [3, 1].enumerated() {
            usleep(700_000)
            try writeFile((server.configPath as NSString).lastPathComponent, config(workers))
            XCTAssertEqual(kill(server.pid, SIGHUP), 0)
            XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: step + 2, timeout: 30), "\(server.notify.messages)")
            let s = try status(server)
            XCTAssertEqual(s.workersConfigured, workers)
            XCTAssertEqual(s.workers.filter { $0.generation == step + 2 }.count, workers, "\(s.workers)")
            XCTAssertEqual(s.listeners.map(\.sockets), [3], "sockets are added going up and kept going down")
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(128 * 1024), label: "after \(workers) workers")
        }
        usleep(1_500_000)
        let result = load.stop()
        XCTAssertEqual(result.failures, [], "\(result.failures.count) of \(result.successes + result.failures.count) short connections failed")
        XCTAssertGreaterThan(result.successes, 20)
        for stream in streams {
            let end = stream.stop()
            XCTAssertNil(end.failure, "\(stream.label) after \(end.rounds) rounds")
        }
        // The single worker of generation 3 accepted everything after the last reload.
        let before = try status(server).workers.filter { $0.generation == 3 }.map(\.accepted).reduce(0, +)
        for i in 0..<10 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "last \(i)") }
        try eventually("the one worker counted the last connections") {
            try status(server).workers.filter { $0.generation == 3 }.map(\.accepted).reduce(0, +) >= before + 10
        }
    }
}
