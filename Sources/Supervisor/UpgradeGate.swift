// The last step of a binary upgrade: the new supervisor's workers must not accept on the shared
// sockets while the old workers still do. Two processes accepting on one socket race for each
// connection (debug builds of NIO even trap on the lost race), and the zero-downtime reload avoids
// it the same way: the new generation accepts once the old one has stopped.
//
//   new supervisor: first generation ready (not accepting) → "ready" on the ready pipe
//   old supervisor: drains its workers; once each has acknowledged (stopped accepting) or after
//                   `ackTimeout`, closes the "go" pipe
//   new supervisor: the go pipe ends (or `waitTimeout` passes) → its workers start accepting
//
// Connections arriving in between wait in the sockets' accept queues, as during a reload.

import Glibc
import Shared

enum UpgradeGate {
    static let ackTimeout = 5.0
    /// Longer than the old side's own bound, so a slow but working old supervisor is waited for.
    static let waitTimeout = 10.0

    /// Old side: the write end, and the workers whose acknowledgement it waits for.
    struct Sender {
        var fd: Int32
        var waiting: Set<pid_t>
        var deadline: Double
    }

    /// New side: the read end (nil once it ended) and when to stop waiting.
    struct Receiver {
        var waitingFD: Int32?
        var deadline: Double?
    }
}

extension WorkerPool {
    /// Old side, right after the new supervisor said "ready": wait for `workers` to stop accepting.
    func armUpgradeGo(fd: Int32, workers pids: Set<pid_t>) {
        upgradeGo = UpgradeGate.Sender(fd: fd, waiting: pids, deadline: monotonicNow() + UpgradeGate.ackTimeout)
        if pids.isEmpty { sendUpgradeGo(reason: "no workers") }
    }

    /// A worker acknowledged its drain or exited.
    func upgradeGoSettled(_ pid: pid_t) {
        guard upgradeGo != nil else { return }
        upgradeGo!.waiting.remove(pid)
        if upgradeGo!.waiting.isEmpty { sendUpgradeGo(reason: "old workers stopped accepting") }
    }

    func sendUpgradeGo(reason: String) {
        guard let go = upgradeGo else { return }
        upgradeGo = nil
        try? Posix.close(go.fd)
        logger.info("upgrade: the new workers may accept", metadata: ["why": "\(reason)", "waitingFor": "\(go.waiting.sorted())"])
    }

    /// New side: the go pipe ended (or the wait timed out): the first generation starts accepting.
    func openUpgradeGate(reason: String) {
        guard let gate = upgradeGate else { return }
        upgradeGate = nil
        if let fd = gate.waitingFD { try? Posix.close(fd) }
        logger.info("upgrade: accepting", metadata: ["why": "\(reason)"])
        for worker in workers.values where worker.generation == generation { startAccepting(worker) }
    }
}
