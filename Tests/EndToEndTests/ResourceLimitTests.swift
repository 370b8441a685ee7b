// Running out of descriptors: accept(2) fails with EMFILE, the worker pauses accepting instead of
// spinning on the still-readable socket, counts the errors, and serves again once descriptors free up.

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ResourceLimitTests: EndToEndTestCase {
    /// utime + stime of a process, in clock ticks.
    private func cpuTicks(_ pid: pid_t) throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = text[text.index(after: text.lastIndex(of: ")")!)...].split(separator: " ")
        return Int(rest[11])! + Int(rest[12])!
    }

    func testDescriptorExhaustionDoesNotSpin() throws {
        let prlimit = try Tool.require("/usr/bin/prlimit", install: "apt-get install util-linux")
        let echo = try makeEchoServer()
        let user = VMessTestUser("alice@example.com")
        // A hard limit of 64 descriptors, inherited by the worker.
        let server = try startVMessd(users: [user], workers: 1, prefix: [prlimit, "--nofile=64:64"])
        let worker = try status(server).workers[0].pid

        // Far more idle connections than the worker can hold.
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<120 { idle.append(try Sock.connect(port: server.port)) }
        try eventually("accept failures counted", timeout: 10) { try status(server).workers[0].acceptErrors > 0 }

        let before = try cpuTicks(worker)
        usleep(2_000_000)
        let used = try cpuTicks(worker) - before
        let hz = sysconf(Int32(_SC_CLK_TCK))
        XCTAssertLessThan(used, hz / 4, "the worker used \(used) ticks of 2 s while out of descriptors: accept is spinning")

        // Descriptors free again: service resumes.
        for fd in idle { close(fd) }
        idle = []
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try eventually("serving again", timeout: 20) {
            (try? ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "after", timeout: 5)) != nil
        }
        XCTAssertTrue(server.process.output().contains("accept failed; pausing accepts"))
    }
}
