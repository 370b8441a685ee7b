// `vmessd ctl top` as a person sees it: in a real terminal (tmux, 80×24, its own server socket),
// while the reference v2ray client moves bytes through vmessd. The screen must show the workers and
// a traffic rate on the inbound, fit the terminal, and `q` must end it and give the shell its
// screen back.

import Foundation
import Glibc
import TestSupport
import XCTest

final class CtlTopInteropTests: InteropTestCase {
    /// tmux on a socket of the test's own, so that no other tmux server is touched. Spawned like every
    /// peer (ManagedProcess: output to files; a pipe would never end, the server tmux starts keeps it).
    func tmux(_ socket: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let binary = try Tool.require("/usr/bin/tmux", install: "apt-get install tmux; scripts/install-deps.sh does")
        let p = try launch("tmux-\(arguments.first ?? "")", binary, ["-S", socket] + arguments)
        guard p.waitForExit(timeout: 10) else { throw HarnessError("tmux \(arguments.first ?? "") did not finish") }
        return (p.exitStatus ?? -1, p.output())
    }

    func screen(_ socket: String) throws -> [String] {
        let captured = try tmux(socket, ["capture-pane", "-p", "-t", "top"])
        return captured.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    func testTopShowsWorkersAndRatesAndQuitsOnQ() throws {
        guard ServerKind.underTest == .vmessd else { throw XCTSkip("vmessd's own command") }
        let alice = VMessTestUser(security: "aes-128-gcm")
        let server = try startServer(.vmessd, users: [alice])
        let echo = try makeEchoServer()
        let client = try startClient(server: server, user: alice, targetPort: echo.port)
        let control = try XCTUnwrap(server.control)

        let socket = workDir.appendingPathComponent("tmux.sock").path
        let command = "\(try VMessdBinaries.vmessd()) ctl --control \(control) top; echo top-exited-$?"
        XCTAssertEqual(try tmux(socket, ["new-session", "-d", "-s", "top", "-x", "80", "-y", "24", "sh"]).status, 0)
        onTearDown { _ = try? self.tmux(socket, ["kill-server"]) }
        XCTAssertEqual(try tmux(socket, ["send-keys", "-t", "top", command, "Enter"]).status, 0)

        // Bytes keep moving while the screen is watched: a rate needs two refreshes around them.
        let stop = NSLock()
        var moving = true
        let traffic = BackgroundTask("traffic") {
            while true {
                stop.lock(); let go = moving; stop.unlock()
                guard go else { return }
                try self.echoRoundTrip(port: client.dokodemoPort, payload: randomData(200_000), label: "traffic")
            }
        }
        defer {
            stop.lock(); moving = false; stop.unlock()
            _ = traffic.join(timeout: 30)
        }

        var lines: [String] = []
        var seen = false
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            lines = try screen(socket)
            let workers = lines.filter { $0.range(of: #"^\d+\s+\d+\s+1\s+ready\b"#, options: .regularExpression) != nil }
            let inbound = lines.first { $0.hasPrefix("vmess-in ") }
            // A rate in KiB/s or more on the inbound's row: bytes moved between two refreshes.
            if lines.contains(where: { $0.hasPrefix("WORKER") }), workers.count == 2,
               let inbound, inbound.range(of: #"\d+\.\d (KiB|MiB|GiB)/s"#, options: .regularExpression) != nil {
                seen = true
                break
            }
            usleep(200_000)
        }
        XCTAssertTrue(seen, "no screen with two ready workers and a traffic rate on vmess-in:\n\(lines.joined(separator: "\n"))")
        XCTAssertTrue(lines.contains { $0.hasPrefix("vmessd pid ") }, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("rejected: ") }, lines.joined(separator: "\n"))
        XCTAssertLessThanOrEqual(lines.filter { !$0.isEmpty }.count, 24)
        XCTAssertTrue(lines.allSatisfy { $0.count <= 80 }, "a line wider than the terminal:\n\(lines.joined(separator: "\n"))")

        let after = try quit(socket, key: "q", exits: 1)
        // The alternate screen is gone: the shell's own screen is back, without the view.
        XCTAssertFalse(after.contains { $0.hasPrefix("WORKER") }, after.joined(separator: "\n"))
        // The terminal is back in cooked mode: typed text echoes again.
        XCTAssertEqual(try tmux(socket, ["send-keys", "-t", "top", "echo cooked-$((40+2))", "Enter"]).status, 0)
        usleep(500_000)
        XCTAssertTrue(try screen(socket).contains("cooked-42"))

        // Ctrl-C ends it the same way (raw mode takes it as a key, so the restore still runs).
        XCTAssertEqual(try tmux(socket, ["send-keys", "-t", "top", "clear; " + command, "Enter"]).status, 0)
        let shownBy = Date().addingTimeInterval(10)
        while Date() < shownBy, !(try screen(socket)).contains(where: { $0.hasPrefix("WORKER") }) { usleep(100_000) }
        let afterInterrupt = try quit(socket, key: "C-c", exits: 1)
        XCTAssertFalse(afterInterrupt.contains { $0.hasPrefix("WORKER") }, afterInterrupt.joined(separator: "\n"))
        assertRunning(server.process, client.process)
    }

    /// Sends `key` and waits for the shell's `top-exited-0` line (the `exits`-th since the screen was
    /// last cleared); the screen after.
    func quit(_ socket: String, key: String, exits: Int) throws -> [String] {
        XCTAssertEqual(try tmux(socket, ["send-keys", "-t", "top", key]).status, 0)
        let quitBy = Date().addingTimeInterval(5)
        var after: [String] = []
        while Date() < quitBy {
            after = try screen(socket)
            if after.filter({ $0 == "top-exited-0" }).count >= exits { break }
            usleep(100_000)
        }
        XCTAssertEqual(after.filter { $0 == "top-exited-0" }.count, exits,
                       "\(key) did not end it with status 0:\n\(after.joined(separator: "\n"))")
        return after
    }
}
