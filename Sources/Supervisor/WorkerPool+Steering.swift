// Where the kernel sends new connections. Each worker position has a socket of its own in each
// listening group (ListenerSet); a position whose worker is gone (crashed, draining on its own, or
// respawning and not yet accepting) would keep receiving its share of new connections, which then
// wait in its accept queue until a worker is back: for a worker in a crash loop, up to the 30 s
// backoff, or for good. So the groups' steering program leaves such positions out while other
// positions accept, and takes them back once their worker accepts again. What was already queued
// on a position's socket stays there for its next worker (the socket itself is kept).

import Shared

extension WorkerPool {
    /// Positions of the current generation with no worker accepting on their sockets.
    var positionsNotAccepting: Set<Int> {
        let accepting = workers.values.filter { $0.generation == generation && $0.state == .ready && $0.accepting }.map(\.index)
        return Set(0..<settings.workers).subtracting(accepting)
    }

    /// Re-steers the listening groups when the set of positions not accepting changed (`force`: in
    /// any case, as when a generation takes over with new sockets). Only while running: a
    /// supervisor that hands over at an upgrade or stops leaves the groups to whoever comes next.
    func updateSteering(force: Bool = false) {
        guard isRunning, settings.workers > 1 || force else { return }
        let around = positionsNotAccepting
        guard force || around != steeredAround else { return }
        for problem in listeners.steer(around: around) { logger.warning("\(problem)") }
        let everyone = around.isEmpty || around.count == settings.workers
        if around != steeredAround {
            if everyone {
                logger.notice("new connections go to every worker position")
            } else {
                logger.notice("new connections go around worker positions without an accepting worker",
                              metadata: ["positions": "\(around.sorted())"])
            }
        }
        steeredAround = around
    }
}
