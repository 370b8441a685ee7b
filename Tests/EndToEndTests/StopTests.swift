// Stopping: SIGTERM lets an open stream finish (new connections are refused at once) and exits 0;
// SIGQUIT stops at once; `vmessd ctl stop` drains like SIGTERM.

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class StopTests: EndToEndTestCase {
    func testSIGTERMLetsAnOpenStreamFinishThenExitsZero() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2, drainTimeout: 60)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        let stream = try LongStream(port: client.port, label: "stream")
        XCTAssertTrue(stream.waitForRounds(3))

        XCTAssertEqual(kill(server.pid, SIGTERM), 0)
        XCTAssertTrue(server.notify.waitFor("STOPPING=1", timeout: 10))
        XCTAssertTrue(server.notify.statuses.contains { $0.hasPrefix("stopping: draining") }, "\(server.notify.statuses)")

        // Nothing new is accepted: the listening sockets are closed right away.
        try eventually("new connections refused", timeout: 10) {
            do {
                close(try Sock.connect(port: server.port))
                return false
            } catch SocketError.call(_, let code) where code == ECONNREFUSED {
                return true
            }
        }
        // The open stream keeps working for as long as it wants.
        XCTAssertTrue(stream.waitForRounds(40), "\(stream.state)")
        XCTAssertTrue(server.process.isRunning, "the supervisor waits for the stream")
        let end = stream.stop()
        XCTAssertNil(end.failure)

        // Once it has ended, the workers and then the supervisor exit, with status 0.
        XCTAssertTrue(server.process.waitForExit(timeout: 20), "vmessd did not exit after the last stream ended")
        XCTAssertEqual(server.process.exitStatus, 0, server.process.exitDescription)
        XCTAssertFalse(FileManager.default.fileExists(atPath: server.control), "admin socket removed")
    }

    func testDrainTimeoutBoundsTheStop() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 1, drainTimeout: 1)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        let stream = try LongStream(port: client.port, label: "stream")
        XCTAssertTrue(stream.waitForRounds(3))
        let (code, response) = try ctl(server, "stop")
        XCTAssertEqual(code, 0)
        XCTAssertTrue(response.message.hasPrefix("stopping"), response.message)
        // The stream outlives the 1 s drain timeout: it is cut, and vmessd still exits 0.
        XCTAssertTrue(server.process.waitForExit(timeout: 15))
        XCTAssertEqual(server.process.exitStatus, 0, server.process.exitDescription)
        XCTAssertTrue(server.process.output().contains("why=\"drain timeout\""), "the worker says why it exited")
        stream.abort()
    }

    func testSIGQUITStopsAtOnce() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2, drainTimeout: 60)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        let stream = try LongStream(port: client.port, label: "stream")
        XCTAssertTrue(stream.waitForRounds(3))
        let workers = try status(server).workers.map(\.pid)
        let start = Date()
        XCTAssertEqual(kill(server.pid, SIGQUIT), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 10))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "no drain")
        XCTAssertEqual(server.process.exitStatus, 0)
        for pid in workers { XCTAssertFalse(Self.exists(pid)) }
        XCTAssertFalse(stream.waitForRounds(1, timeout: 5), "the stream was cut")
        stream.abort()
    }

    /// The supervisor killed outright: its workers see their control sockets close, stop accepting,
    /// finish their connections and exit — no orphan keeps serving on its own.
    func testWorkersDrainWhenTheSupervisorDies() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        let server = try startVMessd(users: [user], workers: 2, drainTimeout: 60)
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        let stream = try LongStream(port: client.port, label: "stream")
        XCTAssertTrue(stream.waitForRounds(3))
        let workers = try status(server).workers.map(\.pid)

        XCTAssertEqual(kill(server.pid, SIGKILL), 0)
        XCTAssertTrue(server.process.waitForExit(timeout: 10))
        try eventually("no new connections", timeout: 10) {
            do {
                close(try Sock.connect(port: server.port))
                return false
            } catch SocketError.call(_, let code) where code == ECONNREFUSED {
                return true
            }
        }
        XCTAssertTrue(stream.waitForRounds(20), "the open stream is finished, not cut: \(stream.state)")
        XCTAssertNil(stream.stop().failure)
        try eventually("the workers exited", timeout: 20) { workers.allSatisfy { !Self.exists($0) } }
        XCTAssertTrue(server.process.output().contains("the supervisor is gone; draining"))
    }
}
