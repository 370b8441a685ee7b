// The running workers and the supervisor's main loop: wait for a signal, act on it, repeat until no
// worker is left. Everything happens on the main thread, one signal at a time.

import Glibc
import Logging
import Shared

final class WorkerPool {
    struct Worker {
        var id: Int
        var generation: Int
        var pid: pid_t
    }

    private enum Phase {
        case running
        /// SIGTERM/SIGINT: workers drain; past the deadline the stragglers are killed.
        case draining(deadline: Double)
        /// SIGQUIT (or a drain past its deadline): workers stop now; past the deadline, SIGKILL.
        case quitting(deadline: Double, killed: Bool)
    }

    /// A drain that outlives the workers' own drain timeout by this much is cut short: the workers
    /// enforce the timeout themselves, this only bounds a worker that hangs.
    static let drainGrace = 5.0
    /// How long an immediate stop waits for workers before SIGKILL.
    static let quitGrace = 2.0

    private let launcher: WorkerLauncher
    private let listeners: ListenerSet
    private let config: Config
    private let drainTimeout: Double
    private let notifier: Notifier
    private let signals: SignalWaiter
    private let logger: Logger
    private var workers: [pid_t: Worker] = [:]
    private var phase = Phase.running
    private var exitStatus: Int32 = 0

    init(launcher: WorkerLauncher, listeners: ListenerSet, config: Config, drainTimeout: Double,
         notifier: Notifier, signals: SignalWaiter, logger: Logger) {
        self.launcher = launcher
        self.listeners = listeners
        self.config = config
        self.drainTimeout = drainTimeout
        self.notifier = notifier
        self.signals = signals
        self.logger = logger
    }

    var count: Int { workers.count }

    /// Spawns workers 0..<count of `generation`. If one fails, the ones already started are stopped
    /// and the error is rethrown once they are gone.
    func start(count: Int, generation: Int) throws {
        for id in 0..<count {
            do {
                let pid = try launcher.spawn(workerID: id, generation: generation, config: config,
                                             listeners: listeners.listeners(forWorker: id))
                workers[pid] = Worker(id: id, generation: generation, pid: pid)
                logger.notice("worker started", metadata: ["worker": "\(id)", "pid": "\(pid)", "generation": "\(generation)"])
            } catch {
                logger.error("cannot start worker", metadata: ["worker": "\(id)", "error": "\(error)"])
                beginQuit()
                _ = superviseUntilExit()
                throw error
            }
        }
    }

    /// The main loop. Returns the supervisor's exit status once every worker has exited.
    func superviseUntilExit() -> Int32 {
        while !workers.isEmpty {
            let signal: Int32?
            do {
                signal = try signals.next(timeout: secondsToDeadline())
            } catch {
                // sigtimedwait cannot fail with valid arguments; if it does, looping would spin.
                logger.critical("waiting for signals failed", metadata: ["error": "\(error)"])
                killAll(SIGKILL)
                return 1
            }
            switch signal {
            case nil: deadlinePassed()
            case SIGCHLD: reap()
            case SIGTERM, SIGINT: handleStopRequest(signal!)
            case SIGQUIT:
                logger.notice("immediate stop requested", metadata: ["signal": "SIGQUIT"])
                beginQuit()
            case SIGHUP:
                logger.warning("reload is not implemented yet; SIGHUP ignored")
            default:
                break
            }
        }
        return exitStatus
    }

    // MARK: stopping

    private func handleStopRequest(_ signal: Int32) {
        switch phase {
        case .running:
            logger.notice("stopping: draining workers", metadata: [
                "signal": "\(signalName(signal))", "drainTimeout": "\(drainTimeout)",
            ])
            notifier.stopping(status: "draining \(workers.count) workers")
            phase = .draining(deadline: monotonicNow() + drainTimeout + Self.drainGrace)
            killAll(SIGTERM)
        case .draining:
            // A second Ctrl-C means "now": the operator does not want to wait for the drain.
            logger.notice("second stop request: stopping immediately", metadata: ["signal": "\(signalName(signal))"])
            beginQuit()
        case .quitting:
            break
        }
    }

    private func beginQuit() {
        if case .quitting = phase { return }
        if case .running = phase { notifier.stopping(status: "stopping") }
        phase = .quitting(deadline: monotonicNow() + Self.quitGrace, killed: false)
        killAll(SIGQUIT)
    }

    private func secondsToDeadline() -> Double? {
        switch phase {
        case .running: nil
        case .draining(let deadline), .quitting(let deadline, _): deadline - monotonicNow()
        }
    }

    private func deadlinePassed() {
        switch phase {
        case .running:
            break
        case .draining:
            logger.error("drain timeout passed; stopping remaining workers", metadata: ["workers": "\(pids)"])
            beginQuit()
        case .quitting(_, let killed):
            if !killed { logger.error("workers did not stop; killing them", metadata: ["workers": "\(pids)"]) }
            // SIGKILL always works; the long deadline only avoids spinning until the reaping SIGCHLD.
            phase = .quitting(deadline: monotonicNow() + 60, killed: true)
            killAll(SIGKILL)
        }
    }

    private var pids: String { workers.keys.sorted().map(String.init).joined(separator: ",") }

    private func killAll(_ signal: Int32) {
        for pid in workers.keys.sorted() {
            // ESRCH only means it already exited; its SIGCHLD is on the way.
            if kill(pid, signal) != 0 && errno != ESRCH {
                logger.warning("cannot signal worker", metadata: [
                    "pid": "\(pid)", "signal": "\(signalName(signal))", "error": "\(String(cString: strerror(errno)))",
                ])
            }
        }
    }

    // MARK: reaping

    /// Collects every exited child (SIGCHLDs coalesce: one signal can stand for several exits).
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == 0 { return }
            if pid < 0 {
                if errno == EINTR { continue }
                if errno != ECHILD {
                    logger.error("waitpid failed", metadata: ["error": "\(String(cString: strerror(errno)))"])
                }
                // No children at all: any worker we still list is gone without a trace.
                workers.removeAll()
                return
            }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            workerExited(worker, status: ChildStatus(status))
        }
    }

    private func workerExited(_ worker: Worker, status: ChildStatus) {
        let metadata: Logger.Metadata = [
            "worker": "\(worker.id)", "pid": "\(worker.pid)", "generation": "\(worker.generation)",
            "status": "\(status)",
        ]
        guard case .running = phase else {
            if status.isCleanExit {
                logger.notice("worker exited", metadata: metadata)
            } else {
                logger.warning("worker exited", metadata: metadata)
            }
            return
        }
        // Respawning comes with the next release; until then the pool shrinks. Note that the
        // supervisor keeps this worker's sockets open, so their share of new connections waits unaccepted.
        logger.error("worker exited unexpectedly", metadata: metadata)
        notifier.status("worker \(worker.id) exited (\(status)); \(workers.count) workers left")
        if workers.isEmpty {
            logger.critical("all workers have exited; stopping")
            exitStatus = 1
        }
    }
}

/// A wait status, decoded (the W* macros are not importable from Swift).
struct ChildStatus: CustomStringConvertible, Equatable {
    enum Kind: Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    var kind: Kind

    init(_ raw: Int32) {
        let signal = raw & 0x7f
        kind = signal == 0 ? .exited((raw >> 8) & 0xff) : .signaled(signal)
    }

    var isCleanExit: Bool { kind == .exited(0) }

    var description: String {
        switch kind {
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by \(signalName(signal))"
        }
    }
}
