// Upgrading vmessd's own binary without dropping a connection (SIGUSR2, `vmessd ctl upgrade`), the
// way nginx's master hands its listening sockets to a new binary on SIGUSR2:
//
//   1. start the binary now installed at this process's path, with the same command line, every
//      listening socket, the shared-memory region and the admin socket (UpgradeHandover)
//   2. the new supervisor checks the config (a binary that rejects it exits: nothing changes),
//      brings up its workers on the same sockets, and once they serve writes "ready" to a pipe
//      (and sends MAINPID= with READY=1: it is systemd's main process from then on)
//   3. this supervisor then stops serving the admin socket, tells its workers to drain, and exits
//      when they are done; it never removes a socket file the new one serves
//
// A new binary that exits, crashes or stays silent past `upgradeTimeout` is killed; this supervisor
// keeps serving and says so (log, STATUS=, the `vmessd ctl upgrade` answer). Both generations hold
// the same kernel sockets throughout, so nothing queued on them is lost.

import Foundation
import Glibc
import Logging
import Shared

extension WorkerPool {
    struct Upgrade {
        var pid: pid_t
        /// Read end of the ready pipe (non-blocking).
        var readyFD: Int32
        /// Write end of the go pipe (UpgradeGate).
        var goFD: Int32
        var deadline: Double
    }

    /// The new binary must report ready within this (its workers have `readyTimeout` themselves).
    static let upgradeTimeout: Double = {
        // VMESSD_UPGRADE_TIMEOUT (seconds): for tests of a new binary that never gets ready.
        if let text = ProcessInfo.processInfo.environment["VMESSD_UPGRADE_TIMEOUT"], let seconds = Double(text), seconds > 0 {
            return seconds
        }
        return readyTimeout + 15
    }()

    /// Variables that named this process only.
    static let upgradeHiddenEnvironment: Set<String> = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID",
                                                        UpgradeHandover.environmentKey]

    func requestUpgrade(reason: String) {
        guard isRunning else { return refuseUpgrade("not upgrading: vmessd is stopping") }
        // A second request while one runs gets the same outcome (its client waits like the first).
        guard upgrade == nil else { return }
        guard pending == nil, settling == nil else { return refuseUpgrade("not upgrading: a reload is in progress; try again") }
        guard let executable = selfExecutable else { return refuseUpgrade("not upgrading: this process's path is unknown") }
        guard configPath != nil else { return refuseUpgrade("not upgrading: the embedded demo config cannot be handed over") }
        guard let memory = region.descriptor else { return refuseUpgrade("not upgrading: no shared-memory descriptor") }
        logger.notice("upgrade requested", metadata: ["trigger": "\(reason)", "executable": "\(executable)"])
        releaseControlListeners()

        var ends: [Int32] = [-1, -1]
        // pipe2 is a GNU extension Glibc does not import; the supervisor is single-threaded and
        // spawns with closefrom, so setting close-on-exec right after is as good.
        guard pipe(&ends) == 0, fcntl(ends[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(ends[1], F_SETFD, FD_CLOEXEC) == 0 else {
            return refuseUpgrade("upgrade failed: pipe: \(String(cString: strerror(errno)))")
        }
        defer { try? Posix.close(ends[1]) }
        var go: [Int32] = [-1, -1]
        guard pipe(&go) == 0, fcntl(go[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(go[1], F_SETFD, FD_CLOEXEC) == 0 else {
            try? Posix.close(ends[0])
            return refuseUpgrade("upgrade failed: pipe: \(String(cString: strerror(errno)))")
        }
        defer { try? Posix.close(go[0]) }
        let users: Int32
        do {
            users = try Posix.makeMemfd(name: "vmessd-runtime-users", contents: Array(try JSONEncoder().encode(runtimeUsers)))
        } catch {
            try? Posix.close(ends[0])
            try? Posix.close(go[1])
            return upgradeFailed("cannot hand over the runtime users: \(error)")
        }
        defer { try? Posix.close(users) }
        let (handover, descriptors) = UpgradeHandover.make(ready: ends[1], sharedMemory: memory, admin: admin?.listener,
                                                          listeners: listeners, passed: passed, runtimeUsers: users, go: go[0])
        let pid: pid_t
        do {
            var environment = Posix.environment(removing: Self.upgradeHiddenEnvironment)
            environment.append("\(UpgradeHandover.environmentKey)=\(try handover.encoded())")
            pid = try Posix.spawn(executable, arguments: [executable] + commandLine, environment: environment, descriptors: descriptors)
            try Posix.setNonBlocking(ends[0])
        } catch {
            try? Posix.close(ends[0])
            try? Posix.close(go[1])
            return upgradeFailed("cannot start \(executable): \(error)")
        }
        upgrade = Upgrade(pid: pid, readyFD: ends[0], goFD: go[1], deadline: monotonicNow() + Self.upgradeTimeout)
        logger.notice("upgrade: new supervisor started; waiting until its workers serve", metadata: ["pid": "\(pid)"])
        refreshStatus()
    }

    /// The ready pipe is readable: "ready", or the end of the pipe (the new process died; its exit
    /// status comes with SIGCHLD).
    func readUpgradePipe() {
        guard let u = upgrade else { return }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(u.readyFD, &buffer, buffer.count)
        if n > 0, String(decoding: buffer[0..<n], as: UTF8.self).contains("ready") {
            upgradeSucceeded()
        } else if n == 0 {
            upgradeFailed("the new supervisor (pid \(u.pid)) closed its ready pipe without reporting ready")
        }
    }

    /// A child exited: true if it was the new binary (whose failure this reports).
    func upgradeChildExited(_ pid: pid_t, status: ChildStatus) -> Bool {
        guard let u = upgrade, u.pid == pid else { return false }
        upgradeFailed("the new supervisor (pid \(pid)) exited before it was ready: \(status)", alreadyGone: true)
        return true
    }

    func checkUpgradeDeadline(now: Double) {
        guard let u = upgrade, now >= u.deadline else { return }
        upgradeFailed("the new supervisor (pid \(u.pid)) did not report ready within \(Int(Self.upgradeTimeout)) s")
    }

    private func upgradeSucceeded() {
        guard let u = upgrade else { return }
        try? Posix.close(u.readyFD)
        upgrade = nil
        logger.notice("upgrade: the new supervisor serves; draining this one's workers, then exiting", metadata: [
            "newPid": "\(u.pid)", "workers": "\(workers.count)",
        ])
        answerUpgrade(ok: true, "upgraded: new supervisor pid \(u.pid); the old one (pid \(getpid())) drains and exits")
        admin?.handOver()
        admin = nil
        notifier.handOver(to: u.pid)
        handedOver = true
        let accepting = Set(workers.values.filter { $0.state != .draining }.map(\.pid))
        requestStop(reason: "upgrade handed over to pid \(u.pid)")
        armUpgradeGo(fd: u.goFD, workers: accepting)
    }

    private func upgradeFailed(_ reason: String, alreadyGone: Bool = false) {
        if let u = upgrade {
            try? Posix.close(u.readyFD)
            try? Posix.close(u.goFD)
            // Its workers lose their supervisor and drain at once (they were never told to accept).
            if !alreadyGone { kill(u.pid, SIGKILL) }
        }
        upgrade = nil
        if api == nil, config.api != nil {
            do {
                try startAPI(config.api)
            } catch {
                logger.error("cannot restart the gRPC API after the failed upgrade; it is off", metadata: ["error": "\(error)"])
            }
        }
        if metricsServer == nil, config.daemon.metrics != nil {
            do {
                try startMetrics(config.daemon.metrics)
            } catch {
                logger.error("cannot restart the metrics endpoint after the failed upgrade; it is off", metadata: ["error": "\(error)"])
            }
        }
        reloadProblem = "upgrade failed: \(reason)"
        logger.error("upgrade failed; this binary keeps serving", metadata: ["reason": "\(reason)"])
        refreshStatus()
        answerUpgrade(ok: false, "upgrade failed: \(reason); still serving (pid \(getpid()))")
    }

    /// The gRPC API's and the metrics endpoint's ports must be free for the new binary to bind them
    /// (their listeners are not shared: two processes accepting on one socket is what the workers'
    /// SO_REUSEPORT groups avoid). So they stop here first, for the moment of the upgrade, and come
    /// back if it fails.
    private func releaseControlListeners() {
        var addresses: [(host: String, port: Int)] = []
        if let running = api {
            running.stop()
            api = nil
            addresses += running.config.listeners.map { ($0.host, $0.port) }
        }
        if let running = metricsServer {
            running.stop()
            metricsServer = nil
            addresses.append((running.settings.host, running.settings.port))
        }
        // The listeners close on their own event loops: wait (bounded) until each address binds.
        let deadline = monotonicNow() + 3
        for listener in addresses {
            while monotonicNow() < deadline {
                if let probe = try? Posix.makeBoundSocket(host: listener.host, port: listener.port, reusePort: false) {
                    try? Posix.close(probe)
                    break
                }
                usleep(20_000)
            }
        }
    }

    /// An upgrade that cannot start now: nothing was spawned, nothing changes.
    private func refuseUpgrade(_ message: String) {
        logger.warning("\(message)")
        answerUpgrade(ok: false, message)
    }

    /// Answers the `vmessd ctl upgrade` clients waiting for the outcome.
    func answerUpgrade(ok: Bool, _ message: String) {
        guard let admin else { return }
        for fd in admin.waiting(for: .upgrade) {
            admin.respond(fd, AdminResponse(ok: ok, message: message, status: ok ? nil : status()))
        }
    }

    /// A stop while the new binary is coming up: it is killed (it has served nothing yet).
    func cancelUpgrade() {
        guard upgrade != nil else { return }
        upgradeFailed("cancelled: vmessd is stopping")
    }
}
