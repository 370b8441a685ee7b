// The supervisor's state and main loop, modelled on nginx's master process cycle
// (src/os/unix/ngx_process_cycle.c): a table of workers, listening sockets reused by address across
// reloads, signals that only set work for the loop, and one control channel per worker.
//
// Everything happens on the main thread, in one poll loop over the signalfd, the workers' control
// sockets and the admin socket, with timers (heartbeats, watchdog, respawn backoff, deadlines)
// folded into the poll timeout. No Swift runs in a signal handler.
//
// Generations: every start and every reload brings up a complete generation of workers. A generation
// is "pending" until each of its workers has reported ready; then it becomes current and the
// previous one drains. A pending generation that fails (a worker dies or does not report in time)
// is abandoned and the current one keeps serving.

import Foundation
import Glibc
import Logging
import Shared

final class WorkerPool {
    /// Values from the command line, which win over the config's "vmessd" object at every reload.
    struct Overrides {
        var workers: Int?
        var drainTimeout: Double?
        var control: String?
    }

    struct Settings: Equatable {
        var workers: Int
        var drainTimeout: Double
    }

    final class Worker {
        enum State: String { case starting, ready, draining }

        let index: Int
        let generation: Int
        let pid: pid_t
        var control: Int32?
        var state = State.starting
        /// Told to start accepting (ControlMessage.accept).
        var accepting = false
        /// The supervisor asked it to drain (a reload, a stop): its exit is expected.
        var drainRequested = false
        let startedAt: Double
        let startedWall: Int64
        var readyDeadline: Double
        var lastReply: Double
        /// Heartbeats sent and not answered yet (the oldest first).
        var outstanding: UInt64 = 0
        var sharedSlot: Int?
        /// What the worker said before failing (ControlMessage.failed), for the exit log line.
        var failure: String?
        /// Killed by us for not answering heartbeats.
        var killedUnresponsive = false
        /// Killed by us for not reporting ready in time (killedUnresponsive is set too).
        var killedNotReady = false
        /// A draining worker past this is killed.
        var drainDeadline: Double?

        init(index: Int, generation: Int, pid: pid_t, control: Int32, now: Double, readyTimeout: Double) {
            self.index = index
            self.generation = generation
            self.pid = pid
            self.control = control
            startedAt = now
            startedWall = Int64(time(nil))
            readyDeadline = now + readyTimeout
            lastReply = now
        }
    }

    /// Per worker position of the current generation: restart history and a pending respawn.
    struct Position {
        var backoff = RestartBackoff()
        var respawnAt: Double?
        var lastExit: String?
    }

    /// A generation being brought up (the first one, or a reload's).
    struct Pending {
        var generation: Int
        var config: Config
        var settings: Settings
        var plan: ListenerSet.Plan
        var deadline: Double
        var initial: Bool
        var startedAt: Double
    }

    /// Between the commit of a generation and READY=1: the old workers have been told to drain and
    /// each acknowledges once it has stopped accepting. Only then is the reload complete — a client
    /// that connects after READY=1 (or after `vmessd ctl reload` returned) reaches the new config.
    struct Settling {
        var waiting: Set<pid_t>
        var deadline: Double
        var initial: Bool
        /// When the reload began (admin requests made before it are answered).
        var startedAt: Double
    }

    enum Phase {
        case running
        /// SIGTERM/SIGINT/ctl stop: workers drain; past the deadline the stragglers are killed.
        case stopping(deadline: Double)
        /// SIGQUIT (or a second stop request): workers stop now; past the deadline, SIGKILL.
        case quitting(deadline: Double, killed: Bool)
    }

    /// A worker must report ready within this (it only has to map memory and start listening).
    static let readyTimeout = 60.0
    /// Old workers acknowledge a drain within this, or READY=1 goes out without them.
    static let drainAckTimeout = 5.0
    /// A drain that outlives the workers' own drain timeout by this much is cut short: the workers
    /// enforce the timeout themselves, this only bounds a worker that hangs.
    static let drainGrace = 5.0
    /// How long an immediate stop waits for workers before SIGKILL.
    static let quitGrace = 2.0
    /// A ready worker that has not answered a heartbeat for this long is killed and respawned.
    static let hangTimeout = 20.0
    static let statusInterval = 5.0

    let launcher: WorkerLauncher
    let notifier: Notifier
    let logger: Logger
    let region: SharedRegion
    let slots: WorkerSlots
    let userTable: CounterTable
    let reasonTable: CounterTable
    /// The gRPC API's named counters (StatName).
    let statTable: CounterTable
    /// Users added and removed at runtime (RuntimeUsers), applied over every generation's config.
    var runtimeUsers = RuntimeUsers()
    /// Where they are kept across restarts (nil: no state directory; they last until the process ends).
    var userStore: RuntimeUserStore?
    /// The gRPC API (nil: the config has none) and how its handlers reach this loop.
    var api: APIServer?
    var bridge: MainLoopBridge?
    /// The Prometheus endpoint (nil: `vmessd.metrics` is absent) and what it renders.
    var metricsServer: MetricsServer?
    let metricTable: CounterTable
    let supervisorMetrics = SupervisorMetrics()
    lazy var metricsExporter = MetricsExporter(registry: supervisorMetrics.registry)
    let signalFD: Int32
    /// The file reloads re-read (nil: the embedded demo config, reloaded as it is).
    let configPath: String?
    let overrides: Overrides
    let passed: [PassedSocket]
    var admin: AdminServer?
    let startedAt = monotonicNow()
    /// Heartbeat period: 2 s, or a quarter of the watchdog interval if that is shorter.
    let heartbeatInterval: Double

    // The current generation (after the first commit).
    var config: Config
    var settings: Settings
    var listeners = ListenerSet()
    /// Worker positions the listening groups currently send new connections around (+Steering).
    var steeredAround: Set<Int> = []
    var generation = 0
    /// The highest generation number ever started (abandoned ones included: numbers are not reused).
    var lastGeneration = 0
    var positions: [Position] = []
    /// The config as read, before port-0 inbounds got their real ports and before the random port
    /// allocation chose (what a demo reload and an allocation refresh reuse).
    var loadedConfig: Config
    /// When the next random port allocation is due (dynamic port); nil: the config has none.
    var nextPortRefresh: Double?

    var workers: [pid_t: Worker] = [:]
    var pending: Pending?
    var settling: Settling?
    var phase = Phase.running
    /// A reload asked for while another was in progress: run it right after.
    var reloadQueued = false
    var exitStatus: Int32 = 0
    var finished = false

    var reloads = 0
    var totalRestarts = 0
    var lastReload: String?
    /// Kept in STATUS= until the next successful reload.
    var reloadProblem: String?
    /// A binary upgrade in progress (the new supervisor's pid and ready pipe).
    var upgrade: Upgrade?
    /// The new binary serves: this process only drains its workers and must not remove socket files.
    var handedOver = false
    /// Old side of an upgrade that succeeded: the write end of the "go" pipe, closed once every old
    /// worker has stopped accepting (or at the deadline), so that the new workers never accept on
    /// the shared sockets at the same time as these (UpgradeGate).
    var upgradeGo: UpgradeGate.Sender?
    /// New side: the read end of that pipe; the first generation starts accepting when it ends.
    var upgradeGate: UpgradeGate.Receiver?
    /// This binary's install path and command line (after argv[0]), read at start: what an upgrade runs.
    var selfExecutable: String?
    var commandLine: [String] = []
    /// Called once the first generation serves (a supervisor started by an upgrade tells the old one).
    var onFirstServing: (() -> Void)?
    var heartbeatSequence: UInt64 = 0
    var nextHeartbeat: Double
    var nextWatchdog: Double?
    var nextStatus: Double

    init(launcher: WorkerLauncher, notifier: Notifier, logger: Logger, region: SharedRegion, signalFD: Int32,
         configPath: String?, overrides: Overrides, passed: [PassedSocket], config: Config, settings: Settings) {
        self.launcher = launcher
        self.notifier = notifier
        self.logger = logger
        self.region = region
        slots = WorkerSlots(region: region)
        userTable = CounterTable(region: region, kind: .users)
        reasonTable = CounterTable(region: region, kind: .reasons)
        statTable = CounterTable(region: region, kind: .stats)
        metricTable = CounterTable(region: region, kind: .metrics)
        self.signalFD = signalFD
        self.configPath = configPath
        self.overrides = overrides
        self.passed = passed
        self.config = config
        self.loadedConfig = config
        self.settings = settings
        let now = monotonicNow()
        heartbeatInterval = min(2.0, (notifier.watchdogInterval ?? 8) / 4)
        nextHeartbeat = now + heartbeatInterval
        nextWatchdog = notifier.watchdogInterval.map { now + $0 / 2 }
        nextStatus = now + Self.statusInterval
        schedulePortRefresh(config)
    }

    /// The next `allocate` refresh, from the config's shortest `refresh` (nil: none to do).
    func schedulePortRefresh(_ config: Config) {
        nextPortRefresh = PortAllocation.refreshInterval(config).map { monotonicNow() + $0 }
    }

    // MARK: main loop

    /// Brings up generation 1 with `plan` and supervises until the last worker is gone. Returns the
    /// process exit status.
    func run(initial plan: ListenerSet.Plan) -> Int32 {
        let config = Self.served(self.config, plan: plan, settings: settings, users: runtimeUsers)
        startGeneration(config: config, settings: settings, plan: plan, initial: true)
        while !finished {
            let now = monotonicNow()
            let timeout = nextWakeup(now: now).map { $0 - now }
            let ready: [EventPoller.Ready]
            do {
                ready = try EventPoller.wait(pollDescriptors(), timeout: timeout)
            } catch {
                // poll cannot fail with valid arguments; if it does, looping would spin.
                logger.critical("waiting for events failed", metadata: ["error": "\(error)"])
                killAll(SIGKILL)
                return 1
            }
            for event in ready { handle(event) }
            tick(now: monotonicNow())
        }
        admin?.close()
        api?.stop()
        metricsServer?.stop()
        bridge?.close()
        return exitStatus
    }

    /// The config as workers get it: port-0 inbounds with their real ports, and the effective
    /// settings (flags folded in), so a worker draining on its own (SIGTERM, supervisor gone) uses
    /// the same drain timeout as the supervisor.
    static func served(_ config: Config, plan: ListenerSet.Plan, settings: Settings, users: RuntimeUsers) -> Config {
        var served = users.applied(to: config)
        for inbound in plan.set.inbounds { served.inbounds[inbound.index].port = inbound.address.port }
        served.daemon.workers = settings.workers
        served.daemon.drainTimeout = settings.drainTimeout
        return served
    }

    private func pollDescriptors() -> [Int32] {
        [signalFD] + (bridge.map { [$0.wakeFD] } ?? []) + (admin?.descriptors ?? []) + workers.values.compactMap(\.control)
            + (upgrade.map { [$0.readyFD] } ?? []) + (upgradeGate.flatMap(\.waitingFD).map { [$0] } ?? [])
    }

    private func handle(_ event: EventPoller.Ready) {
        if event.fd == signalFD {
            let signals: [Int32]
            do {
                signals = try SignalWaiter.drain(descriptor: signalFD)
            } catch {
                logger.critical("reading signals failed", metadata: ["error": "\(error)"])
                return
            }
            for signal in signals { handleSignal(signal) }
        } else if let bridge, event.fd == bridge.wakeFD {
            bridge.runQueued(self)
        } else if let admin, event.fd == admin.listener {
            admin.acceptClients(now: monotonicNow())
        } else if let admin, admin.clients[event.fd] != nil {
            if let request = admin.read(event.fd) { handleAdmin(request, client: event.fd) }
        } else if let worker = workers.values.first(where: { $0.control == event.fd }) {
            readControl(worker)
        } else if event.fd == upgrade?.readyFD {
            readUpgradePipe()
        } else if event.fd == upgradeGate?.waitingFD {
            openUpgradeGate(reason: "the old supervisor's workers stopped accepting")
        }
    }

    private func handleSignal(_ signal: Int32) {
        switch signal {
        case SIGCHLD: reap()
        case SIGHUP: requestReload(reason: "SIGHUP")
        case SIGUSR2: requestUpgrade(reason: "SIGUSR2")
        case SIGUSR1: reopenLogs(reason: "SIGUSR1")
        case SIGTERM, SIGINT: requestStop(reason: signalName(signal))
        case SIGQUIT:
            logger.notice("immediate stop requested", metadata: ["signal": "SIGQUIT"])
            beginQuit()
        default: break
        }
    }

    // MARK: timers

    private func nextWakeup(now: Double) -> Double? {
        var times: [Double] = [nextHeartbeat, nextStatus]
        if let nextWatchdog { times.append(nextWatchdog) }
        if let nextPortRefresh, case .running = phase { times.append(nextPortRefresh) }
        if let pending { times.append(pending.deadline) }
        if let settling { times.append(settling.deadline) }
        if let upgrade { times.append(upgrade.deadline) }
        if let d = upgradeGo?.deadline { times.append(d) }
        if let d = upgradeGate?.deadline { times.append(d) }
        for position in positions { if let at = position.respawnAt { times.append(at) } }
        for worker in workers.values {
            // Ready deadlines are acted on only while running (tick): elsewhere they would make the
            // loop spin once past.
            if worker.state == .starting && isRunning { times.append(worker.readyDeadline) }
            if let d = worker.drainDeadline { times.append(d) }
        }
        switch phase {
        case .running: break
        case .stopping(let deadline), .quitting(let deadline, _): times.append(deadline)
        }
        if let d = admin?.nextDeadline { times.append(d) }
        return times.min()
    }

    private func tick(now: Double) {
        admin?.expire(now: now)
        switch phase {
        case .running:
            if let p = pending, now >= p.deadline {
                abandonPending(reason: "generation \(p.generation) did not report ready within \(Int(Self.readyTimeout)) s")
            }
            if let s = settling, now >= s.deadline {
                logger.warning("old workers did not acknowledge the drain in time", metadata: ["pids": "\(s.waiting.sorted())"])
                finishSettling()
            }
            if let due = nextPortRefresh, now >= due {
                nextPortRefresh = nil  // set again by the reload
                requestReload(reason: "allocate refresh", rereadConfig: false)
            }
            checkUpgradeDeadline(now: now)
            respawnDue(now: now)
            killUnready(now: now)
            killUnresponsive(now: now)
        case .stopping(let deadline):
            if now >= deadline {
                logger.error("drain timeout passed; stopping remaining workers", metadata: ["workers": "\(pidList)"])
                beginQuit()
            }
        case .quitting(let deadline, let killed):
            if now >= deadline {
                if !killed { logger.error("workers did not stop; killing them", metadata: ["workers": "\(pidList)"]) }
                // SIGKILL always works; the long deadline only avoids spinning until the reaping SIGCHLD.
                phase = .quitting(deadline: now + 60, killed: true)
                killAll(SIGKILL)
            }
        }
        killOverdueDrains(now: now)
        if let d = upgradeGo?.deadline, now >= d { sendUpgradeGo(reason: "deadline") }
        if let d = upgradeGate?.deadline, now >= d { openUpgradeGate(reason: "the old supervisor did not answer in time") }
        if now >= nextHeartbeat {
            sendHeartbeats()
            nextHeartbeat = now + heartbeatInterval
            updateSteering()
        }
        if let due = nextWatchdog, now >= due, let interval = notifier.watchdogInterval {
            if isHealthy(now: now) { notifier.watchdog() }
            nextWatchdog = now + interval / 2
        }
        if now >= nextStatus {
            refreshStatus()
            nextStatus = now + Self.statusInterval
        }
        if case .running = phase {} else if workers.isEmpty { finished = true }
    }

    // MARK: spawning

    /// Spawns worker `index` of the current (or pending) generation. Returns false if it could not.
    @discardableResult
    func spawn(index: Int, generation: Int, config: Config, listeners: ListenerSet) -> Bool {
        let slot = slots.claim(pid: 0, generation: generation, index: index, startedAt: Int64(time(nil)))
        if slot == nil { logger.warning("no free shared-memory slot; the worker's counters will be missing", metadata: ["worker": "\(index)"]) }
        do {
            let spawned = try launcher.spawn(workerID: index, generation: generation, config: config,
                                             listeners: listeners.listeners(forWorker: index),
                                             sharedMemory: region.descriptor, sharedMemorySlot: slot)
            // The slot is claimed before the spawn (the bootstrap names it); the pid is known now.
            if let slot { slots.setPID(slot, spawned.pid) }
            let worker = Worker(index: index, generation: generation, pid: spawned.pid, control: spawned.control,
                                now: monotonicNow(), readyTimeout: Self.readyTimeout)
            worker.sharedSlot = slot
            workers[spawned.pid] = worker
            logger.notice("worker started", metadata: ["worker": "\(index)", "pid": "\(spawned.pid)", "generation": "\(generation)"])
            return true
        } catch {
            if let slot { slots.release(slot) }
            logger.error("cannot start worker", metadata: ["worker": "\(index)", "generation": "\(generation)", "error": "\(error)"])
            return false
        }
    }

    func startAccepting(_ worker: Worker) {
        guard !worker.accepting, worker.state == .ready else { return }
        worker.accepting = send(.accept, to: worker)
    }

    func send(_ message: ControlMessage, to worker: Worker) -> Bool {
        guard let fd = worker.control else { return false }
        do {
            try Posix.sendMessage(fd, message.encoded())
            return true
        } catch {
            logger.warning("cannot send control message", metadata: [
                "worker": "\(worker.index)", "pid": "\(worker.pid)", "message": "\(message)", "error": "\(error)",
            ])
            return false
        }
    }

    // MARK: control messages

    private func readControl(_ worker: Worker) {
        guard let fd = worker.control else { return }
        while true {
            let received: Posix.ReceivedMessage?
            do {
                received = try Posix.receiveMessage(fd, maximumBytes: ControlMessage.maximumSize, nonBlocking: true)
            } catch {
                logger.warning("control socket error", metadata: ["worker": "\(worker.index)", "pid": "\(worker.pid)", "error": "\(error)"])
                closeControl(worker)
                return
            }
            guard let received else { return }
            if received.isEndOfFile {
                // The worker is exiting (or exited); SIGCHLD brings the status.
                closeControl(worker)
                return
            }
            for fd in received.descriptors { try? Posix.close(fd) }
            do {
                controlMessage(try ControlMessage.decode(received.bytes), from: worker)
            } catch {
                logger.warning("bad control message", metadata: ["worker": "\(worker.index)", "pid": "\(worker.pid)", "error": "\(error)"])
            }
        }
    }

    private func closeControl(_ worker: Worker) {
        guard let fd = worker.control else { return }
        try? Posix.close(fd)
        worker.control = nil
    }

    private func controlMessage(_ message: ControlMessage, from worker: Worker) {
        let now = monotonicNow()
        switch message {
        case .ready:
            guard worker.state == .starting else { return }
            worker.state = .ready
            worker.lastReply = now
            worker.outstanding = 0
            logger.info("worker ready", metadata: [
                "worker": "\(worker.index)", "pid": "\(worker.pid)", "generation": "\(worker.generation)",
                "ms": "\(Int((now - worker.startedAt) * 1000))",
            ])
            if let p = pending, p.generation == worker.generation {
                if generationReady(p.generation) { commitPending() }
            } else {
                // A respawned worker: its socket has had no acceptor, start at once (unless a reload
                // is settling: then it starts with the rest of its generation).
                if settling == nil && worker.generation == generation { startAccepting(worker) }
                updateSteering()
                refreshStatus()
            }
        case .heartbeatReply(let sequence, _):
            if sequence == heartbeatSequence { worker.outstanding = 0 }
            worker.lastReply = now
            if steeredAround.contains(worker.index) { updateSteering() }
        case .draining:
            worker.state = .draining
            if !worker.drainRequested && isRunning && worker.generation == generation {
                // Draining on its own (a signal sent to the worker itself): its socket has no acceptor
                // any more, so its replacement starts now rather than when it finally exits.
                worker.drainRequested = true
                logger.warning("worker is draining on its own; starting its replacement", metadata: [
                    "worker": "\(worker.index)", "pid": "\(worker.pid)",
                ])
                positions[worker.index].respawnAt = now
            }
            settled(worker.pid)
            upgradeGoSettled(worker.pid)
            updateSteering()
        case .failed(let reason):
            worker.failure = reason
            logger.error("worker failed", metadata: ["worker": "\(worker.index)", "pid": "\(worker.pid)", "reason": "\(reason)"])
        case .attach, .heartbeat, .drain, .stop, .accept, .reopenLogs, .addUser, .removeUser:
            logger.warning("unexpected control message from a worker", metadata: ["worker": "\(worker.index)", "message": "\(message)"])
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
                return
            }
            if upgradeChildExited(pid, status: ChildStatus(status)) { continue }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            upgradeGoSettled(pid)
            workerExited(worker, status: ChildStatus(status))
            updateSteering()
        }
    }

    private func workerExited(_ worker: Worker, status: ChildStatus) {
        closeControl(worker)
        settled(worker.pid)
        if let slot = worker.sharedSlot {
            slots.retire(slots.release(slot))
        }
        let now = monotonicNow()
        let uptime = now - worker.startedAt
        var cause = "\(status)"
        if worker.killedUnresponsive { cause += " (unresponsive)" }
        if let failure = worker.failure { cause += ": \(failure)" }
        var metadata: Logger.Metadata = [
            "worker": "\(worker.index)", "pid": "\(worker.pid)", "generation": "\(worker.generation)",
            "status": "\(cause)", "uptime": "\(String(format: "%.1f", uptime))",
        ]

        // A worker of a generation still coming up: that generation has failed.
        if let p = pending, p.generation == worker.generation {
            logger.error("worker of the new generation exited before it was ready", metadata: metadata)
            abandonPending(reason: "worker \(worker.index) of generation \(p.generation) exited before it was ready (\(cause))")
            return
        }
        let expected = worker.drainRequested || worker.generation != generation || !isRunning
        if expected {
            if status.isCleanExit { logger.notice("worker exited", metadata: metadata) } else { logger.warning("worker exited", metadata: metadata) }
            if !isRunning && workers.isEmpty { finished = true }
            if isRunning { refreshStatus() }
            return
        }
        // A crash (or an exit nobody asked for) of a current worker: respawn on the same sockets.
        totalRestarts += 1
        supervisorMetrics.workerRestarted(Self.restartCause(worker, status))
        let delay = positions[worker.index].backoff.workerDied(uptime: uptime)
        positions[worker.index].lastExit = cause
        positions[worker.index].respawnAt = now + delay
        metadata["respawnIn"] = "\(String(format: "%.1f", delay))s"
        metadata["restarts"] = "\(positions[worker.index].backoff.restarts)"
        if positions[worker.index].backoff.isCrashLooping {
            logger.critical("worker crash loop; respawn backing off", metadata: metadata)
        } else {
            logger.error("worker exited unexpectedly; respawning", metadata: metadata)
        }
        refreshStatus()
    }

    var isRunning: Bool {
        if case .running = phase { return true }
        return false
    }

    private func respawnDue(now: Double) {
        for index in positions.indices {
            guard let at = positions[index].respawnAt, now >= at else { continue }
            positions[index].respawnAt = nil
            if !spawn(index: index, generation: generation, config: config, listeners: listeners) {
                // Counts as a quick death: back off.
                let delay = positions[index].backoff.workerDied(uptime: 0)
                positions[index].lastExit = "spawn failed"
                positions[index].respawnAt = now + max(delay, RestartBackoff.initialDelay)
            }
        }
        // A respawned worker that stays up clears its position's streak.
        for worker in workers.values where worker.generation == generation && worker.state == .ready {
            positions[worker.index].backoff.workerRunning(uptime: now - worker.startedAt)
        }
    }

    /// A current worker (not one of a pending generation: that has its own deadline) that never
    /// reported ready is killed; the reaper respawns it with backoff.
    private func killUnready(now: Double) {
        for worker in workers.values where worker.state == .starting && now >= worker.readyDeadline {
            if let p = pending, p.generation == worker.generation { continue }
            logger.error("worker did not report ready; killing it", metadata: ["worker": "\(worker.index)", "pid": "\(worker.pid)"])
            worker.readyDeadline = .infinity
            worker.killedUnresponsive = true
            worker.killedNotReady = true
            kill(worker.pid, SIGKILL)
        }
    }

    private func killUnresponsive(now: Double) {
        for worker in workers.values where worker.state == .ready && !worker.killedUnresponsive {
            guard now - worker.lastReply > Self.hangTimeout else { continue }
            logger.error("worker stopped answering heartbeats; killing it", metadata: [
                "worker": "\(worker.index)", "pid": "\(worker.pid)", "silentFor": "\(Int(now - worker.lastReply))s",
            ])
            worker.killedUnresponsive = true
            kill(worker.pid, SIGKILL)
        }
    }

    private func killOverdueDrains(now: Double) {
        for worker in workers.values {
            guard let deadline = worker.drainDeadline, now >= deadline else { continue }
            worker.drainDeadline = nil
            logger.error("draining worker outlived its drain timeout; killing it", metadata: ["worker": "\(worker.index)", "pid": "\(worker.pid)"])
            kill(worker.pid, SIGKILL)
        }
    }

    // MARK: health

    private func sendHeartbeats() {
        heartbeatSequence &+= 1
        for worker in workers.values where worker.state != .draining {
            if send(.heartbeat(sequence: heartbeatSequence), to: worker) { worker.outstanding += 1 }
        }
    }

    /// Every live, non-draining worker answered recently (a worker still starting counts until its
    /// ready deadline), and the current generation has at least one worker serving. While stopping,
    /// the loop itself is the thing to watch: it runs, and its deadlines bound the stop.
    func isHealthy(now: Double) -> Bool {
        if !isRunning { return true }
        let limit = 3 * heartbeatInterval + 1
        var serving = false
        for worker in workers.values {
            switch worker.state {
            case .draining: continue
            case .starting: if now >= worker.readyDeadline { return false }
            case .ready:
                if now - worker.lastReply > limit { return false }
                if worker.generation == generation { serving = true }
            }
        }
        return serving
    }

    // MARK: status

    var pidList: String { workers.keys.sorted().map(String.init).joined(separator: ",") }

    /// Open connections over every live worker (from shared memory, at most a second old).
    var openConnections: UInt64 {
        workers.values.compactMap(\.sharedSlot).reduce(0) { $0 + slots.read($1).open }
    }

    func statusText() -> String {
        switch phase {
        case .stopping:
            return "stopping: draining \(workers.count) workers, \(openConnections) connections"
        case .quitting:
            return "stopping now"
        case .running:
            break
        }
        let current = workers.values.filter { $0.generation == generation && $0.state != .draining }
        let ready = current.filter { $0.state == .ready }.count
        let draining = workers.values.filter { $0.state == .draining }.count
        var text = generation == 0
            ? "starting \(settings.workers) workers"
            : "generation \(generation): \(ready)/\(settings.workers) workers ready, \(openConnections) connections"
        if draining > 0 { text += ", \(draining) draining" }
        if let p = pending, !p.initial { text += "; reloading to generation \(p.generation)" }
        for (index, position) in positions.enumerated() where position.backoff.isCrashLooping {
            text += "; worker \(index) crash loop (\(position.lastExit ?? "?"))"
            if let at = position.respawnAt { text += ", restart in \(String(format: "%.1f", max(0, at - monotonicNow())))s" }
        }
        let now = monotonicNow()
        for worker in current.sorted(by: { $0.index < $1.index }) where isSilent(worker, now: now) {
            text += "; worker \(worker.index) not answering for \(Int(now - worker.lastReply))s"
        }
        if !steeredAround.isEmpty {
            text += "; new connections go around worker\(steeredAround.count == 1 ? "" : "s") \(steeredAround.sorted().map(String.init).joined(separator: ", "))"
        }
        if let reloadProblem { text += "; \(reloadProblem)" }
        return text
    }

    func refreshStatus() {
        notifier.status(statusText())
    }

    // MARK: signalling

    func killAll(_ signal: Int32) {
        for pid in workers.keys.sorted() {
            // ESRCH only means it already exited; its SIGCHLD is on the way.
            if kill(pid, signal) != 0 && errno != ESRCH {
                logger.warning("cannot signal worker", metadata: [
                    "pid": "\(pid)", "signal": "\(signalName(signal))", "error": "\(String(cString: strerror(errno)))",
                ])
            }
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
        case .exited(WorkerBootstrap.BuildMismatch.exitStatus): "exit \(WorkerBootstrap.BuildMismatch.exitStatus) (vmessd-worker is of another build than vmessd)"
        case .exited(let code): "exit \(code)"
        case .signaled(let signal): "killed by \(signalName(signal))"
        }
    }
}
