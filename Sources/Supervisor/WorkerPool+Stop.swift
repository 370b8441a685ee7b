// Stopping: gracefully (SIGTERM, SIGINT, `vmessd ctl stop`) or at once (SIGQUIT, a second stop
// request, a start that failed).

import Glibc
import Logging
import Shared

extension WorkerPool {
    func requestStop(reason: String) {
        switch phase {
        case .running:
            cancelUpgrade()
            let now = monotonicNow()
            logger.notice("stopping: draining workers", metadata: [
                "trigger": "\(reason)", "drainTimeout": "\(settings.drainTimeout)", "workers": "\(workers.count)",
            ])
            if let p = pending {
                pending = nil
                p.plan.abandon()
                answerReloadRequests(startedBefore: .infinity, ok: false, message: "reload cancelled: vmessd is stopping")
            }
            reloadQueued = false
            settling = nil
            for i in positions.indices { positions[i].respawnAt = nil }
            phase = .stopping(deadline: now + settings.drainTimeout + Self.drainGrace)
            for worker in workers.values where worker.state != .draining {
                drain(worker, timeout: settings.drainTimeout)
            }
            // Refuse new connections right away instead of letting them queue until exit. Sockets
            // systemd passed stay open (systemd keeps them; the next start serves their queue).
            // Handed over to a new binary: it serves the very same sockets, so only this process's
            // descriptors go (no socket file is removed).
            if handedOver { listeners.closeDescriptors() } else { listeners.closeAll() }
            listeners = ListenerSet()
            notifier.stopping(status: statusText())
            if workers.isEmpty { finished = true }
        case .stopping where handedOver:
            // After an upgrade this process only drains what it had; the service's stop (SIGTERM to
            // every process of the unit) must not cut those connections. SIGQUIT still does.
            logger.notice("stop requested while draining after an upgrade; still draining", metadata: ["trigger": "\(reason)"])
        case .stopping:
            // A second Ctrl-C means "now": the operator does not want to wait for the drain.
            logger.notice("second stop request: stopping immediately", metadata: ["trigger": "\(reason)"])
            beginQuit()
        case .quitting:
            break
        }
    }

    func beginQuit() {
        if case .quitting = phase { return }
        if isRunning { notifier.stopping(status: "stopping now") }
        if let p = pending {
            pending = nil
            p.plan.abandon()
        }
        settling = nil
        answerReloadRequests(startedBefore: .infinity, ok: false, message: "reload cancelled: vmessd is stopping")
        for i in positions.indices { positions[i].respawnAt = nil }
        phase = .quitting(deadline: monotonicNow() + Self.quitGrace, killed: false)
        killAll(SIGQUIT)
        cancelUpgrade()
        if handedOver { listeners.closeDescriptors() } else { listeners.closeAll() }
        listeners = ListenerSet()
        if workers.isEmpty { finished = true }
    }
}
