// The units in deploy/ under a real systemd (252) running as PID 1 of its own namespaces, following
// the safe recipe in ../shared/docs/testing-with-real-peers.md: private tmpfs on /tmp, /run and
// /var/tmp (systemd's tmpfiles step must never see the machine's real /tmp), a minimal target of its
// own (no enabled service of the machine starts), its own network namespace with only loopback. On
// top of the recipe, inside the sandbox's mount namespace only: /usr/local/bin is the build's
// binaries, /etc an overlay (upper layer on the sandbox's tmpfs) holding /etc/vmessd/config.json, so
// the units run exactly as shipped, and /var an overlay too (systemd writes wtmp records, and the
// sandbox's journald must not write into the machine's persistent journal). The sandbox is powered off at the end of the test, also when
// it fails, and killed (its PID 1, which takes the whole namespace with it) if it does not go.
//
// Shown: socket-activated start (the service starts on the first connection, which is served),
// `systemctl reload` under load with no failed connection and no broken stream, `systemctl status`
// showing vmessd's STATUS= text, `systemctl stop` draining an open stream, the socket staying
// with systemd across the stop (the next connection starts vmessd again), and a binary upgrade by
// SIGUSR2 under load (MainPID moves to the new supervisor, the unit stays active).

import Foundation
import Shared
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class SystemdSandboxTests: EndToEndTestCase {
    override class var testTimeout: TimeInterval { 300 }

    /// The user in deploy/examples/server-tcp.v4.json, which the sandbox uses as its config.
    static let exampleUser = "23ad6b10-8d1a-40f7-8ad0-e3e35cd38297"
    static let systemdBinary = "/lib/systemd/systemd"

    private var sandboxDir: URL!
    private var unshare: ManagedProcess?
    private var pid1: pid_t = 0

    override func tearDown() {
        powerOff() // before the base class stops the processes it started (unshare among them)
        super.tearDown()
    }

    func testDeployUnitsUnderRealSystemd() throws {
        try requireSandbox()
        try bootSandbox()
        do {
            try exerciseUnits()
        } catch {
            // Recorded before the power-off, so it collects the sandbox's diagnostics.
            XCTFail("\(error)")
        }
        powerOff()
    }

    private func exerciseUnits() throws {
        // The units exactly as shipped, plus journald for the logs.
        let deploy = sandboxDir.appendingPathComponent("deploy")
        try inside("cp \(deploy.path)/vmessd.service \(deploy.path)/vmessd.socket /run/systemd/system/ && systemctl daemon-reload")
        // journald for the test's diagnostics: volatile (the sandbox's /run), and stopped before the
        // power-off (see powerOff).
        _ = try? inside("mkdir -p /run/systemd/journald.conf.d && printf '[Journal]\\nStorage=volatile\\n' > "
                        + "/run/systemd/journald.conf.d/volatile.conf && systemctl start systemd-journald.socket systemd-journald.service")
        // The sysctl file applies (net.* are per network namespace: only the sandbox's).
        try inside("sysctl -q -p \(deploy.path)/sysctl.d/90-vmessd.conf && test $(sysctl -n net.ipv4.tcp_migrate_req) = 1")

        // 1. Socket activation: the socket listens, the service is not running yet.
        try inside("systemctl start vmessd.socket")
        XCTAssertEqual(try inside("systemctl is-active vmessd.service || true"), "inactive")

        try NetworkNamespace.enter(pid: pid1)
        defer { NetworkNamespace.leave() }
        let echo = try makeEchoServer()
        let client = try startSandboxClient(targetPort: echo.port)
        // The first connection starts vmessd and waits in systemd's socket until a worker accepts it.
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(64 * 1024), label: "first connection", timeout: 60)
        XCTAssertEqual(try inside("systemctl is-active vmessd.service"), "active")
        let status = try adminStatus()
        XCTAssertEqual(status.listeners.first?.activated, true, "\(status.listeners)")
        XCTAssertEqual(status.generation, 1)
        try assertStatusText(contains: "generation 1: 2/2 workers ready")

        // 2. `systemctl reload` under load: nothing fails, the streams carry on.
        let streams = try (0..<3).map { try LongStream(port: client.port, label: "stream \($0)") }
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        let load = ShortConnectionLoad(port: client.port, threads: 2)
        usleep(700_000)
        for reload in 1...2 {
            try inside("systemctl reload vmessd.service")
            try eventually("reload \(reload) complete", timeout: 60) {
                let show = try inside("systemctl show -p ActiveState -p StatusText vmessd.service")
                return show.contains("ActiveState=active") && show.contains("StatusText=generation \(reload + 1): 2/2 workers ready")
            }
            usleep(700_000)
        }
        let result = load.stop()
        XCTAssertEqual(result.failures, [], "\(result.failures.count) of \(result.successes + result.failures.count) failed")
        XCTAssertGreaterThan(result.successes, 10)
        for stream in streams { XCTAssertTrue(stream.waitForRounds(3), "\(stream.label): \(stream.state)") }
        for stream in streams.dropFirst() { XCTAssertNil(stream.stop().failure) }
        try assertStatusText(contains: "generation 3: 2/2 workers ready")

        // 3. `systemctl stop` drains: the open stream keeps working until it ends, then vmessd exits.
        let survivor = streams[0]
        let stopper = BackgroundTask<String>("systemctl stop") { try self.inside("systemctl stop vmessd.service", timeout: 90) }
        try eventually("stopping", timeout: 20) {
            try inside("systemctl show -p ActiveState -p StatusText vmessd.service").contains("StatusText=stopping: draining")
        }
        XCTAssertEqual(try inside("systemctl show -p ActiveState --value vmessd.service"), "deactivating")
        XCTAssertTrue(survivor.waitForRounds(30), "the open stream works during the drain: \(survivor.state)")
        XCTAssertNil(survivor.stop().failure)
        _ = try stopper.value(timeout: 60, what: "systemctl stop")
        XCTAssertEqual(try inside("systemctl is-active vmessd.service || true"), "inactive")
        let result2 = try inside("systemctl show -p Result --value vmessd.service")
        XCTAssertEqual(result2, "success", "exit status 0 after the drain")

        // 4. The socket stayed with systemd: the next connection starts vmessd again and is served.
        XCTAssertEqual(try inside("systemctl is-active vmessd.socket"), "active")
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(16 * 1024), label: "after restart", timeout: 60)
        XCTAssertEqual(try inside("systemctl is-active vmessd.service"), "active")

        // 5. Binary upgrade under load: a second copy installed over /usr/local/bin/vmessd, then
        // SIGUSR2 to the main process. MainPID moves to the new supervisor (NotifyAccess=all), the
        // unit stays active throughout, nothing fails; reload and stop then reach the new process.
        let oldMain = try inside("systemctl show -p MainPID --value vmessd.service")
        let upgradeStream = try LongStream(port: client.port, label: "upgrade stream")
        XCTAssertTrue(upgradeStream.waitForRounds(3), "\(upgradeStream.state)")
        let upgradeLoad = ShortConnectionLoad(port: client.port, threads: 2)
        usleep(500_000)
        let bin = sandboxDir.appendingPathComponent("bin")
        let staged = bin.appendingPathComponent("vmessd.new")
        try FileManager.default.copyItem(at: try VMessdBinaries.directory().appendingPathComponent("vmessd"), to: staged)
        XCTAssertEqual(rename(staged.path, bin.appendingPathComponent("vmessd").path), 0)
        try inside("systemctl kill -s USR2 --kill-who=main vmessd.service")
        var states = Set<String>()
        var newMain = ""
        try eventually("MainPID is the new supervisor", timeout: 60) {
            states.insert(try inside("systemctl show -p ActiveState --value vmessd.service"))
            newMain = try inside("systemctl show -p MainPID --value vmessd.service")
            return newMain != oldMain && newMain != "0"
        }
        XCTAssertTrue(upgradeStream.waitForRounds(3), "the stream opened before the upgrade: \(upgradeStream.state)")
        XCTAssertNil(upgradeStream.stop().failure)
        try eventually("the old supervisor exited once its stream ended", timeout: 40) {
            states.insert(try inside("systemctl show -p ActiveState --value vmessd.service"))
            return try inside("kill -0 \(oldMain) 2>/dev/null && echo alive || echo gone") == "gone"
        }
        // The watchdog keeps running: the new supervisor's WATCHDOG=1 (every 15 s) reaches systemd.
        let lastPing = try inside("systemctl show -p WatchdogTimestampMonotonic --value vmessd.service")
        try eventually("a WATCHDOG=1 from the new supervisor", timeout: 25) {
            try inside("systemctl show -p WatchdogTimestampMonotonic --value vmessd.service") != lastPing
        }
        let upgraded = upgradeLoad.stop()
        XCTAssertEqual(upgraded.failures, [], "\(upgraded.failures.count) of \(upgraded.successes + upgraded.failures.count) failed")
        XCTAssertEqual(states, ["active"], "systemctl status stays active throughout the upgrade")
        XCTAssertEqual(try adminStatus().pid, pid_t(newMain), "the admin socket is the new supervisor's")
        let generation = try adminStatus().generation
        try inside("systemctl reload vmessd.service")
        try eventually("reload after the upgrade", timeout: 60) { try adminStatus().generation == generation + 1 }
        try ShortConnectionLoad.roundTrip(port: client.port, payload: randomData(16 * 1024), label: "after upgrade and reload", timeout: 60)
        // Stop reaches the new supervisor. (Its exit status is not asserted: the main process is no
        // longer systemd's child, and this sandbox's systemd — a container on the legacy cgroup
        // hierarchy — does not wait for such a process but goes on to SIGKILL at once.)
        try inside("systemctl stop vmessd.service", timeout: 60)
        XCTAssertEqual(try inside("systemctl is-active vmessd.service || true"), "inactive")
        XCTAssertEqual(try inside("kill -0 \(newMain) 2>/dev/null && echo alive || echo gone"), "gone")
        try inside("systemctl stop vmessd.service vmessd.socket", timeout: 60)
    }

    // MARK: sandbox

    private func requireSandbox() throws {
        guard getuid() == 0 else { throw XCTSkip("the systemd sandbox needs root (unshare of pid, mount, net namespaces)") }
        guard FileManager.default.isExecutableFile(atPath: Self.systemdBinary) else {
            throw XCTSkip("no systemd at \(Self.systemdBinary) (apt-get install systemd)")
        }
        let probe = try run("/usr/bin/unshare", ["--pid", "--fork", "--mount", "--cgroup", "--net", "--uts", "--ipc",
                                                 "--propagation", "private", "/bin/true"], timeout: 20)
        guard probe.status == 0 else {
            throw XCTSkip("unshare is not permitted here, so no systemd sandbox: \(probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        for tool in ["/usr/bin/nsenter", "/usr/bin/unshare"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw XCTSkip("\(tool) missing (util-linux)")
        }
    }

    /// Where the sandbox's files live: a directory the sandbox does not replace with a private tmpfs
    /// (its /tmp, /run and /var/tmp are fresh), wherever the repository itself was cloned — CI may
    /// clone under /tmp, which would hide the repository inside the sandbox.
    static func sandboxBase() -> URL { URL(fileURLWithPath: "/var/lib/vmessd-e2e") }

    /// Boots systemd in new namespaces and waits until it is running.
    private func bootSandbox() throws {
        // Under the repository: /tmp is private inside the sandbox, the repository is not.
        sandboxDir = Self.sandboxBase().appendingPathComponent("sandbox-\(UUID().uuidString.prefix(8).lowercased())")
        let bin = sandboxDir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        for name in ["vmessd", "vmessd-worker"] {
            try FileManager.default.copyItem(at: try VMessdBinaries.directory().appendingPathComponent(name),
                                             to: bin.appendingPathComponent(name))
        }
        // The units and example config are copied in too: a clone under /tmp (as CI may use) is hidden
        // inside the sandbox, whose /tmp is a fresh tmpfs.
        try FileManager.default.copyItem(at: VMessdBinaries.packageRoot.appendingPathComponent("deploy"),
                                         to: sandboxDir.appendingPathComponent("deploy"))
        let example = sandboxDir.appendingPathComponent("deploy/examples/server-tcp.v4.json")
        XCTAssertTrue(try String(contentsOf: example, encoding: .utf8).contains(Self.exampleUser))
        let boot = sandboxDir.appendingPathComponent("boot.sh")
        try """
        #!/bin/sh
        # PID 1 of new namespaces (testing-with-real-peers.md). Everything below changes only this
        # mount namespace: propagation is private before anything is mounted.
        set -e
        mount --make-rprivate /
        # /proc of this PID namespace: systemd checks a pid it is told about (MAINPID= at a binary
        # upgrade) in /proc, which must show the sandbox's processes, not the machine's.
        mount -t proc proc /proc
        mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /run
        # Beyond the recipe: systemd writes boot and shutdown records to /var/log/wtmp, and the
        # journald started for the test's logs would append to the machine's persistent journal.
        # /var becomes an overlay whose upper layer lives on the sandbox's tmpfs; /var/tmp a tmpfs
        # on top of it, as the recipe has it.
        mkdir -p /tmp/.var-upper /tmp/.var-work
        mount -t overlay overlay -o lowerdir=/var,upperdir=/tmp/.var-upper,workdir=/tmp/.var-work /var
        mount -t tmpfs tmpfs /var/tmp
        mkdir -p /run/systemd/system
        printf '[Unit]\\nDescription=sandbox\\n' > /run/systemd/system/sandbox.target
        # The units run as shipped: binaries in /usr/local/bin, the config in /etc/vmessd.
        mount --bind \(bin.path) /usr/local/bin
        mkdir -p /tmp/.etc-upper /tmp/.etc-work
        mount -t overlay overlay -o lowerdir=/etc,upperdir=/tmp/.etc-upper,workdir=/tmp/.etc-work /etc
        mkdir -p /etc/vmessd
        cp \(example.path) /etc/vmessd/config.json
        ip link set lo up
        exec \(Self.systemdBinary) --system --unit=sandbox.target --log-target=kmsg --show-status=no
        """.write(to: boot, atomically: true, encoding: .utf8)
        chmod(boot.path, 0o755)

        let process = try launch("sandbox", "/usr/bin/unshare", [
            "--pid", "--fork", "--mount", "--cgroup", "--net", "--uts", "--ipc", "--propagation", "private",
            "/usr/bin/env", "container=sandbox", boot.path,
        ])
        unshare = process
        // PID 1 of the sandbox is unshare's child (boot.sh, then systemd in its place).
        try eventually("the sandbox's PID 1", timeout: 20) {
            let children = (try? String(contentsOfFile: "/proc/\(process.pid)/task/\(process.pid)/children", encoding: .utf8)) ?? ""
            guard let first = children.split(separator: " ").first, let pid = pid_t(first) else { return false }
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
            guard exe.hasSuffix("/systemd") else { return false }
            pid1 = pid
            return true
        }
        try eventually("systemd running in the sandbox", timeout: 60) {
            let state = try inside("systemctl is-system-running || true")
            return state == "running" || state == "degraded"
        }
    }

    /// Clean shutdown; if systemd does not go, SIGKILL to its PID 1, which ends the namespace.
    /// Idempotent: called by the test and again at tear-down.
    private func powerOff() {
        guard let process = unshare else { return }
        unshare = nil
        if pid1 > 0 && process.isRunning && (testRun?.totalFailureCount ?? 0) > 0 {
            // What systemd and vmessd said, before the sandbox (and its journal) goes away.
            let script = "systemctl status --no-pager vmessd.socket vmessd.service; journalctl --no-pager -n 150 -u vmessd.service -u vmessd.socket"
            if let r = try? run("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "/bin/sh", "-c", script], timeout: 20) {
                XCTFail("sandbox diagnostics:\n\(r.stdout)\n\(r.stderr)")
            }
        }
        if pid1 > 0 && process.isRunning {
            // The shutdown unmounts the sandbox's overlays and tmpfs mounts before the last processes
            // end: a journald still running would then write into the machine's own /var/log/journal.
            let journald = "systemctl stop systemd-journald.socket systemd-journald-dev-log.socket "
                + "systemd-journald-audit.socket systemd-journald.service"
            _ = try? run("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "/bin/sh", "-c", journald], timeout: 20)
            _ = try? run("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "systemctl", "poweroff"], timeout: 20)
            if !process.waitForExit(timeout: 30) {
                kill(pid1, SIGKILL)
                _ = process.waitForExit(timeout: 10)
            }
        }
        process.terminate(grace: 2)
        if let dir = sandboxDir, (testRun?.totalFailureCount ?? 0) == 0 {
            try? FileManager.default.removeItem(at: dir)
        }
    }

    /// Runs a shell command inside every namespace of the sandbox; returns its trimmed stdout.
    @discardableResult
    private func inside(_ command: String, timeout: TimeInterval = 30) throws -> String {
        let result = try run("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "/bin/sh", "-c", command], timeout: timeout)
        guard result.status == 0 else {
            var logs = ""
            if let journal = try? run("/usr/bin/nsenter", ["-t", "\(pid1)", "-a", "journalctl", "-u", "vmessd", "--no-pager", "-n", "60"], timeout: 20) {
                logs = journal.stdout
            }
            throw HarnessError("in the sandbox: `\(command)` exited \(result.status): \(result.stdout) \(result.stderr)\nvmessd journal:\n\(logs)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The reference client inside the sandbox's network namespace only (it reads its config here).
    private func startSandboxClient(targetPort: UInt16) throws -> V2RayClient {
        let v2ray = try Tool.v2ray()
        let port = try FreePort.tcp() // created in the sandbox's namespace: free there
        let config = Self.json([
            "log": ["loglevel": "warning"],
            "policy": ["levels": ["0": ["handshake": 10, "connIdle": 300, "uplinkOnly": 20, "downlinkOnly": 20]]],
            "inbounds": [[
                "port": Int(port), "listen": "127.0.0.1", "protocol": "dokodemo-door",
                "settings": ["address": "127.0.0.1", "port": Int(targetPort), "network": "tcp"],
            ]],
            "outbounds": [["protocol": "vmess", "settings": ["vnext": [[
                "address": "127.0.0.1", "port": 10086,
                "users": [["id": Self.exampleUser, "alterId": 0, "security": "aes-128-gcm"]],
            ]]]]],
        ])
        let path = try writeFile("sandbox-client.json", config)
        let process = try launch("v2ray-in-sandbox", "/usr/bin/nsenter", ["-t", "\(pid1)", "-n", v2ray, "-config", path])
        try waitForTCPPort(port, timeout: Self.startupTimeout, stillAlive: { process.isRunning })
        return V2RayClient(process: process, port: port)
    }

    private func adminStatus() throws -> AdminStatus {
        let text = try inside("/usr/local/bin/vmessd ctl --control /run/vmessd/admin.sock --json status")
        guard let status = try AdminResponse.decode(Array(text.utf8)).status else { throw HarnessError("no status in \(text)") }
        return status
    }

    private func assertStatusText(contains text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let status = try inside("systemctl status --no-pager vmessd.service || true")
        XCTAssertTrue(status.contains("Status: \"\(text)"), "systemctl status:\n\(status)", file: file, line: line)
    }
}
