import NIOCore

/// V2Ray's activity timer (policy §11.3): the connection closes when nothing has moved for the
/// current timeout. The timeout starts as `connIdle` and shrinks to `downlinkOnly`/`uplinkOnly` once
/// one direction has finished. One scheduled task at a time; activity only stamps a time, so the hot
/// path costs a clock read, not a reschedule.
///
/// With `quiet`, `onQuiet` also runs once each time the connection has been quiet that long (it
/// gives back receive buffers); the first activity after it re-arms the timer for the next quiet
/// period, once per quiet-to-busy change, not per read.
final class ConnectionTimer {
    private let loop: EventLoop
    private var timeout: TimeAmount
    private var lastActivity: NIODeadline
    private var task: Scheduled<Void>?
    private let onExpire: () -> Void
    private let quiet: (after: TimeAmount, action: () -> Void)?
    /// `onQuiet` ran for the current quiet period; the timer then only waits for expiry.
    private var quietHandled = false

    init(loop: EventLoop, timeout: TimeAmount, quiet: TimeAmount? = nil, onQuiet: (() -> Void)? = nil,
         onExpire: @escaping () -> Void) {
        self.loop = loop
        self.timeout = timeout
        self.lastActivity = .now()
        self.onExpire = onExpire
        self.quiet = quiet.flatMap { after in onQuiet.map { (after, $0) } }
        arm(at: nextDeadline())
    }

    @inline(__always)
    func touch() {
        lastActivity = .now()
        if quietHandled, task != nil {
            quietHandled = false
            task?.cancel()
            arm(at: nextDeadline())
        }
    }

    /// Changes the timeout (e.g. after one direction finished); counts as activity.
    func reset(to t: TimeAmount) {
        timeout = t
        lastActivity = .now()
        quietHandled = false
        task?.cancel()
        arm(at: nextDeadline())
    }

    func cancel() {
        task?.cancel()
        task = nil
    }

    private func nextDeadline() -> NIODeadline {
        let due = lastActivity + timeout
        guard let quiet, !quietHandled else { return due }
        return min(due, lastActivity + quiet.after)
    }

    private func arm(at deadline: NIODeadline) {
        task = loop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            let now = NIODeadline.now()
            if self.lastActivity + self.timeout <= now {
                self.task = nil
                self.onExpire()
                return
            }
            if let quiet = self.quiet, !self.quietHandled, self.lastActivity + quiet.after <= now {
                self.quietHandled = true
                quiet.action()
            }
            self.arm(at: self.nextDeadline())
        }
    }
}

/// An inbound handler relaying a connection, as its activity timer sees it.
protocol RelayTimerOwner: AnyObject {
    /// Quiet for `StreamReceiveAllocator.quietBeforeRelease`: give back receive buffers.
    func connectionWentQuiet()
    /// Nothing moved for the policy's timeout: close.
    func connectionIdleTimedOut()
}

extension ConnectionTimer {
    /// A relaying connection's timer: closes at `connIdle` seconds of inactivity and gives back
    /// receive buffers once per quiet period. Holds `owner` weakly.
    static func relaying(_ owner: RelayTimerOwner, loop: EventLoop, connIdle: Int) -> ConnectionTimer {
        ConnectionTimer(loop: loop, timeout: .seconds(Int64(connIdle)), quiet: StreamReceiveAllocator.quietBeforeRelease,
                        onQuiet: { [weak owner] in owner?.connectionWentQuiet() },
                        onExpire: { [weak owner] in owner?.connectionIdleTimedOut() })
    }
}
