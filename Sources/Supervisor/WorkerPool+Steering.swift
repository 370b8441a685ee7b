// Where the kernel sends new connections. Each worker position has a socket of its own in each
// listening group (ListenerSet); a position whose worker is gone (crashed, draining on its own, or
// respawning and not yet ready) would keep receiving its share of new connections, which then
// wait in its accept queue until a worker is back: for a worker in a crash loop, up to the 30 s
// backoff, or for good. The same holds for a worker whose event loop has stopped turning (it
// answers heartbeats from that loop), until it is killed as hung after 20 s. So the groups'
// steering program leaves such positions out while other positions accept, and takes them back
// once their worker accepts (answers) again. What was already queued on a position's socket stays
// there for its worker (the socket itself is kept).

import Shared

extension WorkerPool {
    /// A ready worker silent for longer than two heartbeat intervals (and a margin) has missed two
    /// heartbeats: its loop is not turning.
    func isSilent(_ worker: Worker, now: Double) -> Bool {
        worker.state == .ready && now - worker.lastReply > 2 * heartbeatInterval + 0.5
    }

    /// Positions of the current generation whose worker is gone, not ready (a respawn starting),
    /// draining on its own or silent; none while every position is so (a whole generation waiting
    /// to accept, at a reload or an upgrade, or no worker at all: every socket queues for them).
    var positionsToGoAround: Set<Int> {
        let now = monotonicNow()
        let serving = workers.values.filter { $0.generation == generation && $0.state == .ready && !isSilent($0, now: now) }
        let around = Set(0..<settings.workers).subtracting(serving.map(\.index))
        return around.count == settings.workers ? [] : around
    }

    /// Re-steers the listening groups when the positions to go around changed (`force`: in any
    /// case, as when a generation takes over with new sockets). Only while running: a supervisor
    /// that hands over at an upgrade or stops leaves the groups to whoever comes next.
    func updateSteering(force: Bool = false) {
        guard isRunning, generation > 0 else { return }
        let around = positionsToGoAround
        guard force || around != steeredAround else { return }
        for problem in listeners.steer(around: around) { logger.warning("\(problem)") }
        if around != steeredAround {
            if around.isEmpty {
                logger.notice("new connections go to every worker position")
            } else {
                logger.notice("new connections go around worker positions with no worker accepting or answering",
                              metadata: ["positions": "\(around.sorted())"])
            }
        }
        let changed = around != steeredAround
        steeredAround = around
        if changed { refreshStatus() }
    }
}
