import NIOCore

/// V2Ray's activity timer (policy §11.3): the connection closes when nothing has moved for the
/// current timeout. The timeout starts as `connIdle` and shrinks to `downlinkOnly`/`uplinkOnly` once
/// one direction has finished. One scheduled task at a time; activity only stamps a time, so the hot
/// path costs a clock read, not a reschedule.
final class ConnectionTimer {
    private let loop: EventLoop
    private var timeout: TimeAmount
    private var lastActivity: NIODeadline
    private var task: Scheduled<Void>?
    private let onExpire: () -> Void

    init(loop: EventLoop, timeout: TimeAmount, onExpire: @escaping () -> Void) {
        self.loop = loop
        self.timeout = timeout
        self.lastActivity = .now()
        self.onExpire = onExpire
        arm(at: lastActivity + timeout)
    }

    @inline(__always)
    func touch() { lastActivity = .now() }

    /// Changes the timeout (e.g. after one direction finished); counts as activity.
    func reset(to t: TimeAmount) {
        timeout = t
        lastActivity = .now()
        task?.cancel()
        arm(at: lastActivity + t)
    }

    func cancel() {
        task?.cancel()
        task = nil
    }

    private func arm(at deadline: NIODeadline) {
        task = loop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            let due = self.lastActivity + self.timeout
            if due <= .now() {
                self.task = nil
                self.onExpire()
            } else {
                self.arm(at: due)
            }
        }
    }
}
