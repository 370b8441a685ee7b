// The admin socket: its default path, its permissions, a request/response round trip through the same
// code `vmessd ctl` uses, and the text rendering.

import Foundation
import Glibc
import Logging
import Shared
import XCTest
@testable import Supervisor

final class AdminSocketTests: XCTestCase {
    func testDefaultPath() {
        XCTAssertEqual(AdminSocketPath.resolve(flag: "/x/a.sock", config: "/y/b.sock"), "/x/a.sock")
        XCTAssertEqual(AdminSocketPath.resolve(flag: nil, config: "/y/b.sock"), "/y/b.sock")
        XCTAssertEqual(AdminSocketPath.resolve(flag: nil, config: nil, uid: 0, environment: [:]), "/run/vmessd/admin.sock")
        XCTAssertEqual(AdminSocketPath.resolve(flag: nil, config: nil, uid: 1000, environment: ["XDG_RUNTIME_DIR": "/run/user/1000"]),
                       "/run/user/1000/vmessd/admin.sock")
        XCTAssertEqual(AdminSocketPath.resolve(flag: nil, config: nil, uid: 1000, environment: [:]), "/tmp/vmessd-1000/admin.sock")
    }

    func testRoundTripAndPermissions() throws {
        let directory = NSTemporaryDirectory() + "vmessd-admin-\(getpid())-\(UUID().uuidString.prefix(8))/sub"
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let path = directory + "/admin.sock"
        let server = try AdminServer(path: path, logger: Logger(label: "test"))
        defer { server.close() }
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(stat(directory, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        // A second server on a live path is refused rather than stealing it.
        XCTAssertThrowsError(try AdminServer(path: path, logger: Logger(label: "test")))

        // The client runs on a thread; the "supervisor" side is driven by hand here.
        let reply = AdminResponse(ok: true, message: "generation 2: 2/2 workers ready, 0 connections")
        let done = expectation(description: "client")
        final class Box: @unchecked Sendable { var value: AdminResponse? }
        let received = Box()
        Thread.detachNewThread {
            received.value = try? CtlCommand.exchange(path: path, request: AdminRequest(command: .status), timeout: 5)
            done.fulfill()
        }
        var request: AdminRequest?
        let deadline = Date().addingTimeInterval(5)
        while request == nil && Date() < deadline {
            let ready = try EventPoller.wait(server.descriptors, timeout: 0.5)
            for event in ready {
                if event.fd == server.listener {
                    server.acceptClients(now: monotonicNow())
                } else if let r = server.read(event.fd) {
                    request = r
                    server.respond(event.fd, reply)
                }
            }
        }
        wait(for: [done], timeout: 5)
        XCTAssertEqual(request, AdminRequest(command: .status))
        XCTAssertEqual(received.value, reply)
        XCTAssertTrue(server.clients.isEmpty)

        server.close()
        XCTAssertNotEqual(stat(path, &info), 0, "the socket file is removed at exit")
    }

    func testStaleSocketFileIsReplaced() throws {
        let path = NSTemporaryDirectory() + "vmessd-stale-\(getpid()).sock"
        let stale = try Posix.makeUnixListener(path: path)
        close(stale) // the file stays, nobody answers
        let server = try AdminServer(path: path, logger: Logger(label: "test"))
        server.close()
    }

    func testRendering() {
        let status = AdminStatus(pid: 10, generation: 2, phase: "running", uptimeSeconds: 75, config: "/etc/vmessd/config.json",
                                 workersConfigured: 2, connections: 3, statusText: "generation 2: 2/2 workers ready, 3 connections",
                                 lastReload: "generation 2 at 2026-01-01T00:00:00Z: ok",
                                 workers: [.init(index: 0, pid: 11, generation: 2, state: "ready", uptimeSeconds: 30, connections: 3,
                                                 accepted: 9, rejected: 1, restarts: 2)],
                                 slots: [.init(index: 0, restarts: 2, lastExit: "killed by SIGKILL", crashLoop: true, nextRestartIn: 1.5)],
                                 listeners: [.init(inbound: "vmess-in", address: "0.0.0.0:443", sockets: 2, activated: true)])
        let text = CtlCommand.render(AdminResponse(ok: true, message: "", status: status))
        XCTAssertTrue(text.contains("vmessd pid 10, running, up 1m15s"), text)
        XCTAssertTrue(text.contains("0       11   2    ready  30s     3      9         1         2"), text)
        XCTAssertTrue(text.contains("worker 0: CRASH LOOP, 2 restarts, last exit killed by SIGKILL, restart in 1.5s"), text)
        XCTAssertTrue(text.contains("vmess-in  0.0.0.0:443  2        systemd"), text)
        var stats = AdminStats(accepted: 5, bytesUp: 2048, bytesDown: 3 << 20, rejected: ["replay": 12],
                               users: [.init(user: "alice@example.com", up: 2048, down: 3 << 20)], workerRestarts: 1, reloads: 3)
        XCTAssertFalse(CtlCommand.render(AdminResponse(ok: true, message: "", stats: stats)).contains("INBOUND"),
                       "an older supervisor's answer has no inbound table")
        stats.inboundsUp = ["vmess-in": 4096]
        stats.inboundsDown = ["vmess-in": 10]
        let statsText = CtlCommand.render(AdminResponse(ok: true, message: "", stats: stats))
        XCTAssertTrue(statsText.contains("rejected: replay 12"), statsText)
        XCTAssertTrue(statsText.contains("alice@example.com  2.0 KiB  3.0 MiB"), statsText)
        XCTAssertTrue(statsText.contains("vmess-in  4.0 KiB  10 B"), statsText)
    }
}
