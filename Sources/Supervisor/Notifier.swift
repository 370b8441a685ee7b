// systemd's readiness protocol (sd_notify(3)): READY=1 once serving, STOPPING=1 when draining, STATUS=
// for `systemctl status`. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.

import CSystemd
import Glibc
import Logging

struct Notifier {
    let logger: Logger
    /// Checked once: the variable cannot appear later, and this saves a syscall per message otherwise.
    let enabled: Bool = getenv("NOTIFY_SOCKET") != nil

    func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    func stopping(status: String) { send("STOPPING=1\nSTATUS=\(status)") }
    func status(_ text: String) { send("STATUS=\(text)") }

    /// The environment is left in place (unset_environment 0): the admin socket and reload keep
    /// notifying for the life of the process.
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
