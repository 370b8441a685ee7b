// systemd's service notification protocol (sd_notify(3)) through libsystemd:
//   READY=1 (+ MAINPID= the first time)     every worker of the generation reported ready
//   RELOADING=1 + MONOTONIC_USEC=           a valid new config is being brought up
//   STOPPING=1                              draining before exit
//   STATUS=…                                what `systemctl status` shows: generation, workers, connections
//   WATCHDOG=1                              at half WATCHDOG_USEC, only while the workers answer heartbeats
// Outside systemd (no NOTIFY_SOCKET) nothing is sent, but the STATUS text is still kept for
// `vmessd ctl status`.

import CSystemd
import Glibc
import Logging

final class Notifier {
    let logger: Logger
    /// Checked once: the variable cannot appear later, and this saves a syscall per message otherwise.
    private(set) var enabled: Bool
    /// WATCHDOG_USEC as seconds when the watchdog is on for this process (WATCHDOG_PID matches).
    let watchdogInterval: Double?
    private(set) var lastStatus = ""
    private var sentMainPID = false

    init(logger: Logger) {
        self.logger = logger
        enabled = getenv("NOTIFY_SOCKET") != nil
        var usec: UInt64 = 0
        if sd_watchdog_enabled(0, &usec) > 0 && usec > 0 {
            watchdogInterval = Double(usec) / 1_000_000
        } else {
            watchdogInterval = nil
        }
    }

    /// A binary upgrade: the new supervisor (`pid`) becomes systemd's main process, and this one says
    /// nothing more (its STATUS= would overwrite the new one's). MAINPID= comes from here, the main
    /// process, as well as from the new one: systemd always takes it from the main process, while a
    /// message from the new one is only matched to the unit through its cgroup (and NotifyAccess=all).
    func handOver(to pid: pid_t) {
        send("MAINPID=\(pid)")
        enabled = false
    }

    func ready(status: String) {
        var message = "READY=1\nSTATUS=\(status)"
        // MAINPID: harmless when systemd started us directly, and what lets it track the right
        // process when a wrapper (a shell, systemd-socket-activate) stood in between.
        if !sentMainPID {
            message += "\nMAINPID=\(getpid())"
            sentMainPID = true
        }
        lastStatus = status
        send(message)
    }

    func reloading(status: String) {
        lastStatus = status
        send("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())\nSTATUS=\(status)")
    }

    func stopping(status: String) {
        lastStatus = status
        send("STOPPING=1\nSTATUS=\(status)")
    }

    /// Sends STATUS= only when the text changed.
    func status(_ text: String) {
        guard text != lastStatus else { return }
        lastStatus = text
        send("STATUS=\(text)")
    }

    func watchdog() { send("WATCHDOG=1") }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// The environment is left in place (unset_environment 0): reloads and the watchdog keep
    /// notifying for the life of the process. Workers get an environment without it.
    private func send(_ state: String) {
        guard enabled else { return }
        let result = sd_notify(0, state)
        if result < 0 {
            // Not fatal: the service still works, systemd just learns less (and may time out the start).
            logger.warning("sd_notify failed", metadata: [
                "state": "\(state.split(separator: "\n").first ?? "")",
                "error": "\(String(cString: strerror(-result)))",
            ])
        }
    }
}
