// A worker killed with SIGKILL under load: respawned on the same sockets, the cause logged and counted,
// the other worker's connections untouched, the service carrying on.

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class CrashRecoveryTests: EndToEndTestCase {
    func testKilledWorkerIsRespawnedAndOthersAreUnaffected() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)

        // Eight streams spread over the two workers by the kernel; wait until shared memory shows
        // where they are (each worker publishes its open connections once a second).
        let streams = try (0..<8).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(2), "\(stream.label): \(stream.state)") }
        var before: AdminStatus!
        try eventually("all 8 streams counted in shared memory") {
            before = try status(server)
            return before.workers.reduce(0) { $0 + $1.connections } == 8
        }
        let victim = before.workers.max { $0.connections < $1.connections }!
        let survivorCount = 8 - Int(victim.connections)

        let load = ShortConnectionLoad(port: client.port, threads: 1)
        usleep(300_000)
        XCTAssertEqual(kill(victim.pid, SIGKILL), 0)

        // Respawned in the same position, ready, with the restart counted.
        var after: AdminStatus!
        try eventually("worker \(victim.index) respawned") {
            after = try status(server)
            return after.workers.contains { $0.index == victim.index && $0.pid != victim.pid && $0.state == "ready" }
        }
        let respawned = after.workers.first { $0.index == victim.index && $0.pid != victim.pid }!
        XCTAssertEqual(respawned.restarts, 1)
        XCTAssertEqual(respawned.generation, 1)
        XCTAssertEqual(after.slots[victim.index].lastExit, "killed by SIGKILL")
        XCTAssertFalse(after.slots[victim.index].crashLoop)
        let other = after.workers.first { $0.index != victim.index }!
        XCTAssertTrue(before.workers.contains { $0.pid == other.pid }, "the other worker was not restarted")
        XCTAssertTrue(server.process.output().contains("worker exited unexpectedly; respawning"))

        // Exactly the victim's streams broke (cut, or stalled: the client notices a dead server
        // connection only after its own timeouts); the others carry on byte for byte.
        let baseline = streams.map(\.state.rounds)
        usleep(3_000_000)
        let progressed = streams.indices.map { streams[$0].state.failure == nil && streams[$0].state.rounds >= baseline[$0] + 20 }
        XCTAssertEqual(progressed.filter { $0 }.count, survivorCount, "\(streams.map { "\($0.label): \($0.state)" })")
        XCTAssertEqual(progressed.filter { !$0 }.count, Int(victim.connections))
        for (stream, ok) in zip(streams, progressed) {
            if ok {
                XCTAssertNil(stream.stop().failure, stream.label)
            } else {
                stream.abort()
            }
        }

        // The service continues: once respawned, every new connection works.
        let during = load.stop()
        let afterLoad = ShortConnectionLoad(port: client.port, threads: 2)
        usleep(2_000_000)
        let result = afterLoad.stop()
        XCTAssertEqual(result.failures, [])
        XCTAssertGreaterThan(result.successes, 10)
        // Short connections that were on the killed worker at that moment may fail; not more than that.
        XCTAssertLessThanOrEqual(during.failures.count, 2, "\(during.failures)")
        XCTAssertEqual(try stats(server).workerRestarts, 1)
    }

    /// A position whose worker cannot start any more: respawns back off, the crash loop shows in
    /// STATUS= and `vmessd ctl status`, the other worker serves on and takes every new connection;
    /// fixed, the position recovers.
    func testCrashLoopBacksOffAndIsVisible() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        // A stand-in for vmessd-worker: the real one, unless the "broken" file exists.
        let broken = workDir.appendingPathComponent("broken").path
        let wrapper = try workerWrapper(#"if [ -e "\#(broken)" ]; then echo "simulated start failure" >&2; exit 1; fi"#)
        let server = try startVMessd(users: [user], workers: 2, environment: ["VMESSD_WORKER": wrapper])
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "before")
        let (_, other) = try killWorkerZero(after: broken, server)
        var looping: AdminStatus!
        try eventually("worker 0 in a crash loop", timeout: 15) {
            looping = try status(server)
            return looping.slots[0].crashLoop
        }
        XCTAssertEqual(looping.slots[0].lastExit, "exit 1")
        XCTAssertGreaterThanOrEqual(looping.slots[0].restarts, 3)
        XCTAssertTrue(looping.statusText.contains("worker 0 crash loop (exit 1)"), looping.statusText)
        try eventually("STATUS= shows the crash loop", timeout: 10) {
            server.notify.statuses.contains { $0.contains("worker 0 crash loop (exit 1)") }
        }
        XCTAssertTrue(server.process.output().contains("worker crash loop; respawn backing off"))
        // New connections go around the dead position instead of queueing on its socket until the
        // backoff ends (by chance, 12 of them would all avoid one of two sockets once in 4,096 runs).
        for i in 0..<12 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "during the crash loop \(i)", timeout: 5)
        }
        XCTAssertTrue(server.process.output().contains("new connections go around worker positions with no worker accepting or answering positions=[0]"),
                      server.process.output())
        // The delays grow: not a tight respawn loop.
        usleep(1_000_000)
        let later = try status(server)
        XCTAssertLessThan(later.slots[0].restarts - looping.slots[0].restarts, 4, "respawns must back off")
        XCTAssertEqual(later.workers.first { $0.index == 1 }?.pid, other.pid, "the other worker is untouched")

        // Fixed: the next respawn works and the position serves again.
        try FileManager.default.removeItem(atPath: broken)
        try eventually("worker 0 back", timeout: 40) {
            try status(server).workers.contains { $0.index == 0 && $0.state == "ready" }
        }
        for i in 0..<8 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "after \(i)")
        }
        XCTAssertTrue(server.process.output().contains("new connections go to every worker position"))
    }

    /// A worker whose event loop stops (SIGSTOP stands in for a hung loop) answers no heartbeats:
    /// after two missed ones new connections go to the other worker, and once it answers again it
    /// gets its share back, without having been restarted.
    func testFrozenWorkerGetsNoNewConnectionsUntilItAnswers() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("frozen@example.com")
        let server = try startVMessd(users: [user], workers: 2)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "before")
        let frozen = try XCTUnwrap(try status(server).workers.first { $0.index == 1 })

        XCTAssertEqual(kill(frozen.pid, SIGSTOP), 0)
        var resumed = false
        defer { if !resumed { kill(frozen.pid, SIGCONT) } }
        let around = "new connections go around worker positions with no worker accepting or answering positions=[1]"
        XCTAssertFalse(server.process.output().contains("new connections go around"), "nothing gone around at start")
        try eventually("worker 1 gone around", timeout: 15) { server.process.output().contains(around) }
        // Said in STATUS= (systemctl status) and `vmessd ctl status`.
        try eventually("the status says so", timeout: 10) {
            let text = try status(server).statusText
            return text.contains("worker 1 not answering for") && text.contains("new connections go around worker 1")
        }
        for i in 0..<12 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "while frozen \(i)", timeout: 5)
        }

        XCTAssertEqual(kill(frozen.pid, SIGCONT), 0)
        resumed = true
        try eventually("worker 1 taken back", timeout: 15) {
            server.process.output().contains("new connections go to every worker position")
        }
        let after = try status(server)
        XCTAssertEqual(after.workers.first { $0.index == 1 }?.pid, frozen.pid, "not restarted for a pause")
        for i in 0..<8 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "after \(i)") }
    }

    /// SIGTERM sent to a worker itself (not to the supervisor): it drains — its open stream finishes —
    /// and its replacement starts at once, so its socket is never left without an acceptor.
    func testWorkerDrainingOnItsOwnIsReplacedAtOnce() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        let stream = try LongStream(port: client.port, label: "stream")
        XCTAssertTrue(stream.waitForRounds(3))
        var holder: AdminStatus.Worker!
        try eventually("the stream counted") {
            holder = try status(server).workers.first { $0.connections == 1 }
            return holder != nil
        }
        XCTAssertEqual(kill(holder.pid, SIGTERM), 0)
        try eventually("replacement ready while the old worker drains", timeout: 15) {
            let s = try status(server)
            return s.workers.contains { $0.index == holder.index && $0.pid != holder.pid && $0.state == "ready" }
                && s.workers.contains { $0.pid == holder.pid && $0.state == "draining" }
        }
        XCTAssertTrue(stream.waitForRounds(20), "the draining worker still serves its stream: \(stream.state)")
        for i in 0..<8 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "meanwhile \(i)")
        }
        XCTAssertNil(stream.stop().failure)
        try eventually("the old worker exited", timeout: 20) { !Self.exists(holder.pid) }
        XCTAssertEqual(try stats(server).workerRestarts, 0, "not a crash")
    }
}
