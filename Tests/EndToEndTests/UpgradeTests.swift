// Upgrading vmessd's own binary (issue 12): `vmessd ctl upgrade` and SIGUSR2 start the binary now
// installed at the running supervisor's path on the same sockets and shared memory. The binaries run
// from a copy in the test's directory, which the test replaces as an operator's install would (a new
// file renamed over the old path): with a second copy of the real binary under continuous load and
// long streams (nothing lost, the old supervisor gone once its streams end), and with binaries that
// fail (the old one keeps serving and says why).

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class UpgradeTests: EndToEndTestCase {
    override class var testTimeout: TimeInterval { 240 }

    /// vmessd and vmessd-worker copied side by side into the work directory; returns vmessd's path.
    func installCopy() throws -> String {
        let dir = workDir.appendingPathComponent("bin").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for source in [try VMessdBinaries.vmessd(), try VMessdBinaries.worker()] {
            try install(source: source, at: "\(dir)/\((source as NSString).lastPathComponent)")
        }
        return "\(dir)/vmessd"
    }

    /// Copies `source` next to `path` and renames it over `path` (the running process keeps its file).
    func install(source: String, at path: String) throws {
        try install(data: try Data(contentsOf: URL(fileURLWithPath: source)), at: path)
    }

    func install(data: Data, at path: String) throws {
        let temporary = path + ".new"
        try? FileManager.default.removeItem(atPath: temporary)
        try data.write(to: URL(fileURLWithPath: temporary))
        XCTAssertEqual(chmod(temporary, 0o755), 0)
        XCTAssertEqual(rename(temporary, path), 0)
    }

    /// Stops a supervisor this test did not start itself (the upgraded one) at the end.
    func stopAtTearDown(_ pid: pid_t) {
        onTearDown {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while Self.exists(pid) && Date() < deadline { usleep(50_000) }
            if Self.exists(pid) { kill(pid, SIGKILL) }
        }
    }

    func testUpgradeUnderLoadLosesNothing() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("upgrade@example.com")
        let port = try FreePort.tcp()
        let executable = try installCopy()
        // A TCP inbound and a Unix-socket one: both are handed over.
        let socket = "/tmp/vmessd-up-\(UUID().uuidString.prefix(8).lowercased()).sock"
        onTearDown { unlink(socket) }
        // The metrics endpoint too: the old supervisor lets go of its port for the new one.
        var metricsPort = try FreePort.tcp()
        while metricsPort == port { metricsPort = try FreePort.tcp() }
        let config = Self.serverConfig(port: port, users: [user], daemon: ["metrics": ["listen": "127.0.0.1:\(metricsPort)"]], extra: ["inbounds": [
            ["port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in", "settings": ["clients": [user.serverJSON]]],
            ["listen": socket, "protocol": "vmess", "tag": "unix-in", "settings": ["clients": [user.serverJSON]]],
        ]])
        let server = try startVMessd(config: config, port: port, workers: 2, drainTimeout: 90, executable: executable)
        let oldWorkers = try status(server).workers.map(\.pid)
        var socketInfo = stat()
        XCTAssertEqual(lstat(socket, &socketInfo), 0)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
        let unixClient = try startClient(serverPort: 1, user: user, targetPort: echo.port,
                                         stream: ["network": "domainsocket", "dsSettings": ["path": socket]])
        let unixStream = try LongStream(port: unixClient.port, label: "unix stream")
        let streams = try (0..<3).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        let load = ShortConnectionLoad(port: client.port, threads: 2)
        usleep(700_000)

        // A user added at runtime (no state directory): the new supervisor gets it in the handover.
        let bob = VMessTestUser("bob@example.com")
        let added = try run(try VMessdBinaries.vmessd(), ["ctl", "--control", server.control, "users", "add", "vmess-in", bob.email, bob.id])
        XCTAssertEqual(added.status, 0, added.stdout + added.stderr)

        let acceptedBefore = try stats(server).accepted
        XCTAssertGreaterThan(acceptedBefore, 0)

        // A second copy of the binary, installed over the first; then `vmessd ctl upgrade`.
        try install(source: try VMessdBinaries.vmessd(), at: executable)
        let (code, response) = try ctl(server, "upgrade")
        XCTAssertEqual(code, 0, response.message)
        XCTAssertTrue(response.message.hasPrefix("upgraded: new supervisor pid"), response.message)
        let after = try status(server)
        XCTAssertNotEqual(after.pid, server.pid, "the admin socket is answered by the new supervisor")
        stopAtTearDown(after.pid)
        XCTAssertTrue(after.workers.allSatisfy { !oldWorkers.contains($0.pid) }, "\(after.workers)")
        XCTAssertTrue(server.notify.messages.contains { $0.contains("READY=1") && $0.contains("MAINPID=\(after.pid)") },
                      "the new supervisor becomes the main process: \(server.notify.messages)")
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after upgrade \(i)") }
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: unixClient.port, payload: randomData(64 * 1024), label: "unix after upgrade \(i)") }
        XCTAssertEqual(after.listeners.map(\.address), ["127.0.0.1:\(port)", "unix:\(socket)"])
        let bobClient = try startClient(serverPort: port, user: bob, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: bobClient.port, payload: randomData(16 * 1024), label: "runtime user after upgrade")
        usleep(700_000)

        let result = load.stop()
        XCTAssertEqual(result.failures, [], "\(result.failures.count) of \(result.successes + result.failures.count) short connections failed")
        XCTAssertGreaterThan(result.successes, 20)
        // The streams opened before the upgrade go on (on the old workers, which drain), then end cleanly.
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        XCTAssertTrue(Self.exists(server.pid), "the old supervisor waits for its workers' streams")
        XCTAssertTrue(unixStream.waitForRounds(3), "\(unixStream.state)")
        for stream in streams + [unixStream] {
            let end = stream.stop()
            XCTAssertNil(end.failure, "\(stream.label) after \(end.rounds) rounds")
        }
        XCTAssertTrue(server.process.waitForExit(timeout: 30), "the old supervisor exits once its workers are done")
        XCTAssertEqual(server.process.exitStatus, 0)
        for pid in oldWorkers { XCTAssertFalse(Self.exists(pid), "old worker \(pid)") }
        // The totals carry on through the upgrade (the retired workers' counts live in shared memory).
        XCTAssertGreaterThan(try stats(server).accepted, acceptedBefore, "ctl stats after the upgrade")
        // The new supervisor serves the metrics, with the same totals.
        let accepted = try XCTUnwrap(Self.scrapeAccepted(port: metricsPort), "metrics after the upgrade")
        XCTAssertGreaterThanOrEqual(accepted, acceptedBefore, "the metrics' totals carry on through the upgrade")
        // The old supervisor left the Unix socket file to the new one, which still serves it.
        var info = stat()
        XCTAssertEqual(lstat(socket, &info), 0)
        XCTAssertEqual(info.st_ino, socketInfo.st_ino, "the same socket file")
        try ShortConnectionLoad.roundTrip(port: unixClient.port, payload: randomData(64 * 1024), label: "unix after the old one exited")

        // The new supervisor serves on, reloads, and stops like any other.
        XCTAssertEqual(kill(after.pid, SIGHUP), 0)
        try eventually("the new supervisor reloaded") { try status(server).generation == after.generation + 1 }
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after a reload")
        XCTAssertEqual(kill(after.pid, SIGTERM), 0)
        try eventually("the new supervisor stopped") { !Self.exists(after.pid) }
        XCTAssertNotEqual(lstat(socket, &info), 0, "the new supervisor removes the socket file at stop")
    }

    /// The inodes of the unconnected IPv4 UDP sockets bound to `port` (the kernel's /proc/net/udp: local
    /// address, remote address 0, inode); a session's connected socket has a remote address.
    static func unconnectedUDPSockets(port: UInt16) throws -> Set<String> {
        let table = try String(contentsOfFile: "/proc/net/udp", encoding: .utf8)
        let local = String(format: ":%04X", port)
        var inodes: Set<String> = []
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 9, fields[1].hasSuffix(local), fields[2] == "00000000:0000" else { continue }
            inodes.insert(String(fields[9]))
        }
        return inodes
    }

    /// `vmessd_connections_accepted_total` from one plain HTTP/1.0 GET of the metrics endpoint.
    static func scrapeAccepted(port: UInt16) throws -> UInt64? {
        let fd = try Sock.connect(port: port)
        defer { close(fd) }
        try Sock.writeAll(fd, Data("GET /metrics HTTP/1.0\r\n\r\n".utf8), deadline: Date().addingTimeInterval(5))
        let answer = String(decoding: try Sock.read(fd, count: 1 << 20, deadline: Date().addingTimeInterval(5)).data, as: UTF8.self)
        let line = answer.split(separator: "\n").first { $0.hasPrefix("vmessd_connections_accepted_total ") }
        return line.flatMap { UInt64($0.split(separator: " ").last ?? "") }
    }

    func testFailingNewBinariesLeaveTheOldOneServing() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("stay@example.com")
        let port = try FreePort.tcp()
        let executable = try installCopy()
        let real = try VMessdBinaries.vmessd()
        // With the gRPC API and the metrics endpoint on (listeners of the supervisor's own): they
        // must come back after each failed upgrade, and the new binary must be able to bind them at
        // the successful one.
        let apiPort = try FreePort.tcp()
        var metricsPort = try FreePort.tcp()
        while metricsPort == apiPort || metricsPort == port { metricsPort = try FreePort.tcp() }
        let config = Self.serverConfig(port: port, users: [user], daemon: ["metrics": ["listen": "127.0.0.1:\(metricsPort)"]], extra: [
            "api": ["tag": "api", "services": ["StatsService"]],
            "inbounds": [
                ["listen": "127.0.0.1", "port": Int(apiPort), "protocol": "dokodemo-door", "settings": ["address": "127.0.0.1"], "tag": "api"],
                ["port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "vmess-in", "settings": ["clients": [user.serverJSON]]],
            ],
            "outbounds": [["protocol": "freedom", "tag": "direct"]],
            "routing": ["rules": [["type": "field", "inboundTag": ["api"], "outboundTag": "api"]]],
        ])
        // A short limit for the never-ready binary below (the default is 75 s).
        let server = try startVMessd(config: config, port: port, workers: 2, environment: ["VMESSD_UPGRADE_TIMEOUT": "3"],
                                     executable: executable)
        try waitForTCPPort(apiPort, timeout: 10)
        let before = try status(server)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "before")

        // 1. A binary that crashes at once, by SIGUSR2: STATUS= says so.
        try install(data: Data("#!/bin/sh\nkill -SEGV $$\n".utf8), at: executable)
        XCTAssertEqual(kill(server.pid, SIGUSR2), 0)
        try eventually("STATUS= reporting the failed upgrade") {
            // Its exit (SIGCHLD) or the end of its ready pipe, whichever the supervisor sees first.
            server.notify.statuses.contains {
                $0.contains("upgrade failed") && ($0.contains("exited before it was ready") || $0.contains("closed its ready pipe"))
            }
        }
        // 2. The real binary given a command line it rejects (as a new version rejecting the config
        // would): `vmessd ctl upgrade` exits 1 with the reason.
        try install(data: Data("#!/bin/sh\nexec \(real) \"$@\" --workers 0\n".utf8), at: executable)
        let (code, response) = try ctl(server, "upgrade")
        XCTAssertEqual(code, 1)
        XCTAssertTrue(response.message.contains("upgrade failed") && response.message.contains("still serving"), response.message)

        // 3. A binary that starts and never gets ready: killed at the limit.
        let marker = workDir.appendingPathComponent("never-ready.pid").path
        try install(data: Data("#!/bin/sh\necho $$ > \(marker)\nexec sleep 600\n".utf8), at: executable)
        let (slowCode, slow) = try ctl(server, "upgrade")
        XCTAssertEqual(slowCode, 1)
        XCTAssertTrue(slow.message.contains("did not report ready within 3 s"), slow.message)
        let stuck = try XCTUnwrap(Int32(try String(contentsOfFile: marker, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        try eventually("the never-ready binary was killed") { !Self.exists(stuck) }

        // Nothing changed: same supervisor, same workers, still serving.
        let after = try status(server)
        XCTAssertEqual(after.pid, server.pid)
        XCTAssertEqual(Set(after.workers.map(\.pid)), Set(before.workers.map(\.pid)))
        XCTAssertTrue(after.statusText.contains("upgrade failed"), after.statusText)
        for i in 0..<3 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after failures \(i)") }
        try waitForTCPPort(apiPort, timeout: 10)
        XCTAssertNotNil(try Self.scrapeAccepted(port: metricsPort), "metrics after the failed upgrades")

        // 4. A good binary again: the upgrade goes through.
        try install(source: real, at: executable)
        let (okCode, ok) = try ctl(server, "upgrade")
        XCTAssertEqual(okCode, 0, ok.message)
        let upgraded = try status(server)
        XCTAssertNotEqual(upgraded.pid, server.pid)
        stopAtTearDown(upgraded.pid)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after the upgrade")
        XCTAssertTrue(server.process.waitForExit(timeout: 30))
        try waitForTCPPort(apiPort, timeout: 10)
        XCTAssertNotNil(try Self.scrapeAccepted(port: metricsPort), "metrics from the new binary")
    }

    /// Between installing new binaries and the upgrade signal, the running supervisor keeps starting
    /// its own release's worker: a crashed worker's replacement and a reload's new generation run
    /// the binary opened when it started, not the file now at the path. The upgrade then starts the
    /// new one's.
    func testWorkersRunTheBinaryTheirSupervisorStartedWith() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("same-release@example.com")
        let port = try FreePort.tcp()
        let executable = try installCopy()
        let workerPath = (executable as NSString).deletingLastPathComponent + "/vmessd-worker"
        let server = try startVMessd(config: Self.serverConfig(port: port, users: [user]), port: port, workers: 2,
                                     executable: executable)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "before")

        /// What a worker process runs, as ps and /proc show it.
        func checkWorker(_ pid: pid_t, runsReplacedBinary: Bool, _ label: String) throws {
            let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
            XCTAssertEqual(exe, runsReplacedBinary ? workerPath + " (deleted)" : workerPath, label)
            let comm = try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)
            XCTAssertEqual(comm, "vmessd-worker\n", "\(label): the name ps shows")
            // The descriptor it was started through is closed.
            for fd in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")) ?? ""
                XCTAssertFalse(target.hasPrefix(workerPath), "\(label): fd \(fd) -> \(target)")
            }
        }
        let first = try status(server).workers
        for worker in first { try checkWorker(worker.pid, runsReplacedBinary: false, "started") }

        // A new worker binary is installed (one that would fail and leave a mark).
        let marker = workDir.appendingPathComponent("new-worker-ran").path
        try install(data: Data("#!/bin/sh\necho $$ >> \(marker)\nexit 3\n".utf8), at: workerPath)

        // 1. A worker dies: its replacement is the running release.
        let victim = first[0]
        XCTAssertEqual(kill(victim.pid, SIGKILL), 0)
        var respawned: AdminStatus.Worker?
        try eventually("worker \(victim.index) respawned and ready") {
            respawned = try status(server).workers.first { $0.index == victim.index && $0.pid != victim.pid && $0.state == "ready" }
            return respawned != nil
        }
        try checkWorker(respawned!.pid, runsReplacedBinary: true, "respawned")
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after the respawn")

        // 2. A reload: the new generation too.
        let readyBefore = server.notify.count("READY=1")
        XCTAssertEqual(kill(server.pid, SIGHUP), 0)
        XCTAssertTrue(server.notify.waitForCount("READY=1", atLeast: readyBefore + 1, timeout: 30), "\(server.notify.messages)")
        let reloaded = try status(server)
        let current = reloaded.workers.filter { $0.generation == reloaded.generation }
        XCTAssertEqual(current.count, 2, "\(reloaded.workers)")
        for worker in current { try checkWorker(worker.pid, runsReplacedBinary: true, "reloaded") }
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after the reload")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the newly installed worker binary ran")

        // 3. The real worker installed again, then the upgrade: the new supervisor's workers run it.
        try install(source: try VMessdBinaries.worker(), at: workerPath)
        let (code, response) = try ctl(server, "upgrade")
        XCTAssertEqual(code, 0, response.message)
        let upgraded = try status(server)
        XCTAssertNotEqual(upgraded.pid, server.pid)
        stopAtTearDown(upgraded.pid)
        for worker in upgraded.workers { try checkWorker(worker.pid, runsReplacedBinary: false, "upgraded") }
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "after the upgrade")
    }

    /// A mixed install (a worker binary of another build than the supervisor, e.g. one of the two
    /// files replaced): the worker refuses a bootstrap with settings it does not know instead of
    /// ignoring them, and the supervisor says why. Stood in for by a wrapper that adds a key to the
    /// bootstrap on its way to the real worker, as a newer vmessd would write it.
    func testWorkerOfAnotherBuildRefusesTheBootstrapAndIsNamed() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("mixed@example.com")
        let foreign = workDir.appendingPathComponent("foreign").path
        let rewritten = workDir.appendingPathComponent("rewritten.json").path
        // The bootstrap is compact JSON with sorted keys: it starts with {"config":{.
        let wrapper = try workerWrapper("""
            if [ -e "\(foreign)" ]; then
                sed 's/^{"config":{/{"config":{"settingOfALaterRelease":1,/' <&3 > "\(rewritten)"
                exec "\(try VMessdBinaries.worker())" "$@" 3< "\(rewritten)"
            fi
            """)
        let server = try startVMessd(users: [user], workers: 2, environment: ["VMESSD_WORKER": wrapper])
        let client = try startClient(serverPort: server.port, user: user, targetPort: echo.port)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "before")
        let (_, other) = try killWorkerZero(after: foreign, server)
        var looping: AdminStatus!
        try eventually("worker 0 refused its bootstrap") {
            looping = try status(server)
            return looping.slots[0].lastExit?.contains("exit 78") ?? false
        }
        XCTAssertEqual(looping.slots[0].lastExit, "exit 78 (vmessd-worker is of another build than vmessd)")
        let log = server.process.output()
        XCTAssertTrue(log.contains("it has settings this worker does not know: config.settingOfALaterRelease"), log)
        XCTAssertTrue(log.contains("must be installed together"), log)
        XCTAssertEqual(looping.workers.first { $0.index == 1 }?.pid, other.pid, "the other worker is untouched")

        // Binaries of one build again: the position recovers.
        try FileManager.default.removeItem(atPath: foreign)
        try eventually("worker 0 back", timeout: 40) {
            try status(server).workers.contains { $0.index == 0 && $0.state == "ready" }
        }
        for i in 0..<4 { try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(8 * 1024), label: "after \(i)") }
    }

    /// mKCP's UDP sockets are handed over too: sessions opened before the upgrade keep flowing on the
    /// old workers (each session has its own connected UDP socket), new sessions are served by the new
    /// supervisor's workers on the same port, and the old supervisor exits once its sessions end.
    func testUpgradeHandsOverKCPAndKeepsItsSessions() throws {
        let echo = try makeEchoServer()
        let user = VMessTestUser("kcp-upgrade@example.com")
        let port = try FreePort.udp()
        let executable = try installCopy()
        let config = Self.serverConfig(port: port, users: [user], extra: ["inbounds": [
            ["port": Int(port), "listen": "127.0.0.1", "protocol": "vmess", "tag": "kcp-in",
             "settings": ["clients": [user.serverJSON]], "streamSettings": KCPReloadTests.kcp],
        ]])
        let server = try startVMessd(config: config, port: port, workers: 2, drainTimeout: 90, executable: executable)
        let oldWorkers = try status(server).workers.map(\.pid)
        let listening = try Self.unconnectedUDPSockets(port: port)
        XCTAssertFalse(listening.isEmpty)
        let client = try startClient(serverPort: port, user: user, targetPort: echo.port, stream: KCPReloadTests.kcp)
        let streams = try (0..<3).map { try LongStream(port: client.port, label: "kcp stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }

        try install(source: try VMessdBinaries.vmessd(), at: executable)
        XCTAssertEqual(kill(server.pid, SIGUSR2), 0)
        var after = try status(server)
        // Ready is READY=1 with the new MAINPID: the new supervisor answers the admin socket a little
        // earlier, while it still takes the sockets over (its status then lists no listeners yet).
        try eventually("the new supervisor took over and is ready", timeout: 60) {
            after = try status(server)
            return after.pid != server.pid
                && server.notify.messages.contains { $0.contains("READY=1") && $0.contains("MAINPID=\(after.pid)") }
        }
        after = try status(server)  // read again: READY=1 may have come after the status above
        stopAtTearDown(after.pid)
        XCTAssertTrue(after.workers.allSatisfy { !oldWorkers.contains($0.pid) }, "\(after.workers)")
        XCTAssertEqual(after.listeners.count, 1, "\(after.listeners)")
        // New sessions reach the new workers over the handed-over UDP socket.
        for i in 0..<3 {
            try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "kcp after upgrade \(i)")
        }
        // The sessions from before go on, undisturbed, on the old workers.
        for stream in streams { XCTAssertTrue(stream.waitForRounds(5, timeout: 30), "\(stream.label): \(stream.state)") }
        XCTAssertTrue(Self.exists(server.pid), "the old supervisor waits for its workers' sessions")
        for stream in streams {
            let end = stream.stop()
            XCTAssertNil(end.failure, "\(stream.label) after \(end.rounds) rounds")
        }
        // With their sessions closed by the client, the old generation exits.
        XCTAssertTrue(server.process.waitForExit(timeout: 60), "the old supervisor exits once its sessions ended")
        XCTAssertEqual(server.process.exitStatus, 0)
        for pid in oldWorkers { XCTAssertFalse(Self.exists(pid), "old worker \(pid)") }
        // The very sockets of before serve on (handed over, not bound anew beside the old ones).
        XCTAssertEqual(try Self.unconnectedUDPSockets(port: port), listening)
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "kcp after the old one exited")
    }

}
