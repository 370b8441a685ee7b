// systemd integration without systemd: sd_notify observed on a test-owned NOTIFY_SOCKET (READY with
// MAINPID only once every worker is ready, RELOADING with MONOTONIC_USEC, STOPPING, STATUS, and the
// watchdog that stops while a worker does not answer), and socket activation through
// systemd-socket-activate (matched by FileDescriptorName= and by address, kept across reloads).

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class SystemdIntegrationTests: EndToEndTestCase {
    private func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    func testNotificationsOverALifetime() throws {
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2)
        // READY=1 comes once both workers reported ready over their control sockets.
        let ready = try XCTUnwrap(server.notify.messages.first { $0.contains("READY=1") })
        XCTAssertTrue(ready.contains("MAINPID=\(server.pid)"), ready)
        XCTAssertTrue(ready.contains("STATUS=generation 1: 2/2 workers ready, 0 connections"), ready)
        XCTAssertTrue(try status(server).workers.allSatisfy { $0.state == "ready" })
        XCTAssertEqual(server.notify.messages.filter { $0.contains("MAINPID=") }.count, 1)

        let before = monotonicMicroseconds()
        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: 2, timeout: 30))
        let reloading = try XCTUnwrap(server.notify.messages.first { $0.contains("RELOADING=1") })
        let usecLine = try XCTUnwrap(reloading.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") })
        let usec = try XCTUnwrap(UInt64(usecLine.dropFirst("MONOTONIC_USEC=".count)))
        XCTAssertGreaterThanOrEqual(usec, before)
        XCTAssertLessThan(usec, monotonicMicroseconds())
        // The order systemd expects: RELOADING=1 before the READY=1 that ends it.
        let order = server.notify.messages.compactMap { m -> String? in
            m.contains("RELOADING=1") ? "RELOADING" : m.contains("READY=1") ? "READY" : m.contains("STOPPING=1") ? "STOPPING" : nil
        }
        XCTAssertEqual(order, ["READY", "RELOADING", "READY"])

        XCTAssertEqual(kill(server.pid, SIGTERM), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 20))
        XCTAssertEqual(server.process.exitStatus, 0)
        XCTAssertEqual(server.notify.count("STOPPING=1"), 1)
        XCTAssertTrue(server.notify.statuses.contains { $0.hasPrefix("generation 2: 2/2 workers ready") }, "\(server.notify.statuses)")
    }

    func testWatchdogOnlyWhileWorkersAnswer() throws {
        let user = VMessTestUser("alice@example.com")
        // WATCHDOG_USEC without WATCHDOG_PID applies to the process that reads it: WATCHDOG=1 every
        // 0.5 s, heartbeats every 0.25 s.
        let server = try startVMessd(users: [user], workers: 2, environment: ["WATCHDOG_USEC": "1000000"])
        XCTAssertTrue(server.notify.waitForCount("WATCHDOG=1", atLeast: 3, timeout: 10), "\(server.notify.messages)")
        let worker = try status(server).workers[0].pid

        // A frozen worker stops answering heartbeats: the supervisor stops petting the watchdog, so
        // systemd would restart the service (the supervisor itself would kill the worker after 20 s).
        XCTAssertEqual(kill(worker, SIGSTOP), 0)
        defer { kill(worker, SIGCONT) }
        usleep(2_500_000)
        let frozen = server.notify.count("WATCHDOG=1")
        usleep(2_000_000)
        XCTAssertEqual(server.notify.count("WATCHDOG=1"), frozen, "no WATCHDOG=1 while a worker does not answer")

        XCTAssertEqual(kill(worker, SIGCONT), 0)
        XCTAssertTrue(server.notify.waitForCount("WATCHDOG=1", atLeast: frozen + 2, timeout: 10), "the watchdog resumes")
        XCTAssertEqual(try status(server).workers.first { $0.index == 0 }?.pid, worker, "not restarted for a short pause")
    }

    func testSocketActivationMatchedByName() throws {
        try activation(fdname: "vmess-in")
    }

    func testSocketActivationMatchedByAddress() throws {
        try activation(fdname: "some-other-name")
    }

    private func activation(fdname: String) throws {
        let activate = try Tool.socketActivate()
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let port = try FreePort.tcp()
        // systemd-socket-activate listens, starts vmessd on the first connection with LISTEN_FDS=1,
        // LISTEN_PID and LISTEN_FDNAMES, and passes only the variables named with -E.
        let server = try startVMessd(users: [user], workers: 2, port: port,
                                     prefix: [activate, "-l", "127.0.0.1:\(port)", "--fdname=\(fdname)", "-E", "NOTIFY_SOCKET"],
                                     trigger: { port in try waitForTCPPort(port, timeout: 10) })
        let ready = try XCTUnwrap(server.notify.messages.first { $0.contains("READY=1") })
        XCTAssertTrue(ready.contains("MAINPID=\(server.pid)"), "exec'd in place: \(ready)")
        var s = try status(server)
        XCTAssertEqual(s.listeners.count, 1)
        XCTAssertTrue(s.listeners[0].activated, "\(s.listeners)")
        XCTAssertEqual(s.listeners[0].sockets, 2, "the passed socket and one joined to its group: one per worker")
        XCTAssertEqual(s.listeners[0].address, "127.0.0.1:\(port)")
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
        for i in 0..<6 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(16 * 1024), label: "before reload \(i)") }

        // A reload keeps the passed socket (and never closes it).
        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: 2, timeout: 30))
        s = try status(server)
        XCTAssertEqual(s.generation, 2)
        XCTAssertTrue(s.listeners[0].activated)
        for i in 0..<6 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(16 * 1024), label: "after reload \(i)") }

        XCTAssertEqual(kill(server.pid, SIGTERM), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 20))
        XCTAssertEqual(server.process.exitStatus, 0)
    }
}
