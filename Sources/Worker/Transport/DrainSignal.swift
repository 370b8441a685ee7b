import NIOCore

/// Tells long-lived transport connections that the worker drains. A ws or tcp connection carries one
/// VMess connection and ends with it; an HTTP/2 connection (gRPC, h2) carries many streams and would
/// otherwise stay open, idle, until the drain timeout. Its watcher (H2ConnectionWatcher) observes this
/// signal: on drain it sends GOAWAY, lets the open streams finish, and closes when none is left.
/// Event-loop confined, like everything in a worker.
final class DrainSignal {
    private(set) var draining = false
    private var observers: [ObjectIdentifier: () -> Void] = [:]

    init() {}

    /// `action` runs once, at `begin()` (at once if the drain already began).
    func observe(_ owner: AnyObject, _ action: @escaping () -> Void) {
        if draining { return action() }
        observers[ObjectIdentifier(owner)] = action
    }

    func stopObserving(_ owner: AnyObject) {
        observers[ObjectIdentifier(owner)] = nil
    }

    func begin() {
        guard !draining else { return }
        draining = true
        let all = observers
        observers = [:]
        for action in all.values { action() }
    }
}
