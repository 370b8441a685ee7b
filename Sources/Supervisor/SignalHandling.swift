// The supervisor takes signals synchronously: they stay blocked in every thread and the main loop
// reads them from a signalfd it polls together with the workers' control sockets and the admin
// socket. No Swift code ever runs in an asynchronous signal handler (it is not async-signal-safe),
// and no signal can arrive between "check state" and "sleep".

import CShims
import Glibc
import Shared

struct SignalWaiter {
    /// Everything the supervisor reacts to. SIGCHLD must be blocked (not ignored): an ignored SIGCHLD
    /// makes the kernel reap children itself and we would lose their exit statuses.
    /// SIGUSR1: reopen the log files (logrotate). SIGUSR2: binary upgrade.
    static let handled: [Int32] = [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2]

    private var set = sigset_t()

    /// Blocks the handled signals in the calling thread. Call it on the main thread before any other
    /// thread exists (threads inherit the mask; one that did not block them could take a SIGTERM with
    /// its default action and kill the process) and before the first worker is spawned (so no
    /// SIGCHLD is lost). Workers get an empty mask back through posix_spawn attributes.
    static func blockHandledSignals() throws -> SignalWaiter {
        var waiter = SignalWaiter()
        sigemptyset(&waiter.set)
        for signal in handled { sigaddset(&waiter.set, signal) }
        try Posix.checkingReturnCode("pthread_sigmask(SIG_BLOCK)") { pthread_sigmask(SIG_BLOCK, &waiter.set, nil) }
        // A supervisor whose stdout pipe closed must log, not die.
        signal(SIGPIPE, SIG_IGN)
        return waiter
    }

    /// A non-blocking, close-on-exec signalfd for the handled signals (they must stay blocked).
    func makeDescriptor() throws -> Int32 {
        var set = self.set
        return try Posix.retryingEINTR("signalfd") { vmessd_signalfd(&set) }
    }

    /// Every signal pending on a signalfd, in arrival order (standard signals coalesce: one SIGCHLD
    /// can stand for several exits).
    static func drain(descriptor fd: Int32) throws -> [Int32] {
        var signals: [Int32] = []
        while true {
            let signal = try Posix.retryingEINTR("read(signalfd)") { vmessd_signalfd_read(fd) }
            if signal == 0 { return signals }
            signals.append(signal)
        }
    }

    /// Waits for the next handled signal, at most `timeout` seconds (nil: no limit).
    /// Returns nil when the time ran out.
    func next(timeout: Double?) throws -> Int32? {
        var set = self.set
        guard let timeout else {
            return try Posix.retryingEINTR("sigwaitinfo") { sigwaitinfo(&set, nil) }
        }
        let clamped = max(0, timeout)
        var spec = timespec(tv_sec: Int(clamped), tv_nsec: Int((clamped - clamped.rounded(.down)) * 1e9))
        do {
            return try Posix.retryingEINTR("sigtimedwait") { sigtimedwait(&set, nil, &spec) }
        } catch let error as PosixError where error.errno == EAGAIN {
            return nil
        }
    }
}

/// "SIGTERM" for 15: log lines name signals the way operators type them.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGTRAP: "SIGTRAP"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGSEGV: "SIGSEGV"
    case SIGPIPE: "SIGPIPE"
    case SIGALRM: "SIGALRM"
    case SIGTERM: "SIGTERM"
    case SIGCHLD: "SIGCHLD"
    case SIGUSR1: "SIGUSR1"
    case SIGUSR2: "SIGUSR2"
    case SIGXCPU: "SIGXCPU"
    case SIGXFSZ: "SIGXFSZ"
    case SIGSYS: "SIGSYS"
    default: "signal \(signal)"
    }
}

/// Seconds on the monotonic clock, for deadlines that wall-clock changes must not move.
func monotonicNow() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
