// Bringing up generations: the first at start, a new one at every reload (SIGHUP, `vmessd ctl
// reload`). The order is what makes a reload lose nothing:
//
//   1. read and validate the new config; invalid → log, STATUS=, keep serving (no RELOADING=1)
//   2. plan the sockets: same address → same sockets; new address → new sockets
//   3. RELOADING=1 + MONOTONIC_USEC, spawn the new generation on the planned sockets
//   4. every new worker reports ready (serving, but not accepting yet) → the old workers drain: they
//      stop accepting (and say so), finish their connections, exit; sockets whose address left the
//      config are closed
//   5. the new workers start accepting; READY=1
//
// Both generations hold the same kernel sockets throughout, so whatever is queued stays queued: the
// old workers' closing of their server channels closes only their own descriptors. Between the old
// generation's last accept and the new one's first (a few milliseconds) connections wait in the
// accept queue. Never are two processes accepting on one TCP socket at once: no thundering herd (which
// also trips an assertion in debug builds of NIO), and every connection accepted after READY=1 meets
// the new config. (A Unix-socket inbound has one socket that every worker shares; workers accept on it
// with SharedSocketAcceptor, which expects to lose races.)

import Foundation
import Glibc
import Logging
import Shared

extension WorkerPool {
    func startGeneration(config: Config, settings: Settings, plan: ListenerSet.Plan, initial: Bool) {
        lastGeneration += 1
        let number = lastGeneration
        let now = monotonicNow()
        pending = Pending(generation: number, config: config, settings: settings, plan: plan,
                          deadline: now + Self.readyTimeout, initial: initial, startedAt: now)
        for index in 0..<settings.workers {
            if !spawn(index: index, generation: number, config: config, listeners: plan.set) {
                abandonPending(reason: "cannot start worker \(index) of generation \(number)")
                return
            }
        }
        refreshStatus()
    }

    func generationReady(_ number: Int) -> Bool {
        guard let p = pending, p.generation == number else { return false }
        let members = workers.values.filter { $0.generation == number }
        return members.count == p.settings.workers && members.allSatisfy { $0.state == .ready }
    }

    /// The pending generation serves: it becomes current, the previous one drains.
    func commitPending() {
        guard let p = pending else { return }
        pending = nil
        let now = monotonicNow()
        var old = Set<pid_t>()
        for worker in workers.values where worker.generation != p.generation && worker.state != .draining {
            drain(worker, timeout: p.settings.drainTimeout)
            old.insert(worker.pid)
        }
        p.plan.commit()
        let closed = p.plan.retired.count
        listeners = p.plan.set
        if p.config.api != config.api {
            do {
                try startAPI(p.config.api)
            } catch {
                logger.error("cannot start the gRPC API with the new config; it is off", metadata: ["error": "\(error)"])
            }
        }
        reloadMetrics(p.config.daemon.metrics)
        config = p.config
        settings = p.settings
        generation = p.generation
        // Positions carry their restart history over; nothing waits for a respawn any more (the new
        // generation fills every position).
        var next = (0..<p.settings.workers).map { $0 < positions.count ? positions[$0] : Position() }
        for i in next.indices { next[i].respawnAt = nil }
        positions = next
        // New connections to the first `workers` sockets of each group (a worker count that went
        // down leaves surplus sockets that are still served but should get nothing new), around
        // positions whose worker does not accept yet.
        updateSteering(force: true)
        let ms = Int((now - p.startedAt) * 1000)
        if p.initial {
            logger.notice("vmessd started", metadata: [
                "generation": "\(generation)", "workers": "\(settings.workers)", "config": "\(config.sourceFile)", "ms": "\(ms)",
            ])
        } else {
            reloads += 1
            supervisorMetrics.reloaded(result: "ok", seconds: now - p.startedAt)
            reloadProblem = nil
            lastReload = "generation \(generation) at \(Self.wallClock()): ok"
            logger.notice("reloaded", metadata: [
                "generation": "\(generation)", "workers": "\(settings.workers)", "socketsClosed": "\(closed)", "ms": "\(ms)",
                "draining": "\(old.count)",
            ])
        }
        settling = Settling(waiting: old, deadline: now + Self.drainAckTimeout, initial: p.initial, startedAt: p.startedAt)
        if old.isEmpty { finishSettling() }
    }

    /// An old worker acknowledged its drain (or exited).
    func settled(_ pid: pid_t) {
        guard settling != nil else { return }
        settling!.waiting.remove(pid)
        if settling!.waiting.isEmpty { finishSettling() }
    }

    /// The old generation has stopped accepting: the new one starts, READY=1, answers, and a queued
    /// reload if any.
    func finishSettling() {
        guard let s = settling else { return }
        settling = nil
        if s.initial, upgradeGate != nil {
            // Started by an upgrade: accept once the old supervisor's workers have stopped (UpgradeGate).
            upgradeGate!.deadline = monotonicNow() + UpgradeGate.waitTimeout
        } else {
            for worker in workers.values where worker.generation == generation { startAccepting(worker) }
        }
        notifier.ready(status: statusText())
        if s.initial, let serving = onFirstServing {
            onFirstServing = nil
            serving()
        }
        if !s.initial { answerReloadRequests(startedBefore: s.startedAt, ok: true, message: "reloaded: generation \(generation)") }
        if reloadQueued {
            reloadQueued = false
            requestReload(reason: "queued reload")
        }
    }

    /// The pending generation failed: its workers drain (they may already hold connections), the
    /// sockets opened only for it are closed, the current generation keeps serving.
    func abandonPending(reason: String) {
        guard let p = pending else { return }
        pending = nil
        for worker in workers.values where worker.generation == p.generation {
            drain(worker, timeout: p.settings.drainTimeout)
        }
        p.plan.abandon()
        if p.initial {
            logger.critical("cannot start", metadata: ["reason": "\(reason)"])
            exitStatus = 1
            beginQuit()
            return
        }
        reloadProblem = "reload failed: \(reason)"
        supervisorMetrics.reloaded(result: "failed", seconds: monotonicNow() - p.startedAt)
        lastReload = "generation \(p.generation) at \(Self.wallClock()): failed: \(reason)"
        logger.error("reload failed; the previous generation keeps serving", metadata: [
            "reason": "\(reason)", "generation": "\(generation)",
        ])
        // RELOADING=1 was sent: systemd waits for READY=1 to leave the reloading state.
        notifier.ready(status: statusText())
        answerReloadRequests(startedBefore: p.startedAt, ok: false, message: reloadProblem!)
        if reloadQueued {
            reloadQueued = false
            requestReload(reason: "queued reload")
        }
    }

    /// Tells a worker to drain; if the message cannot be sent, SIGTERM does the same.
    func drain(_ worker: Worker, timeout: Double) {
        worker.state = .draining
        worker.drainRequested = true
        worker.drainDeadline = monotonicNow() + timeout + Self.drainGrace
        let milliseconds = UInt32(clamping: Int((timeout * 1000).rounded()))
        if !send(.drain(timeoutMilliseconds: milliseconds), to: worker) { kill(worker.pid, SIGTERM) }
    }

    /// Reads the config again and brings up a new generation if it is valid.
    /// `rereadConfig` false: the config already loaded, with a new random choice of ports (the
    /// `allocate` refresh); a config edited meanwhile waits for an explicit reload.
    func requestReload(reason: String, rereadConfig: Bool = true) {
        guard isRunning else {
            answerReloadRequests(startedBefore: .infinity, ok: false, message: "not reloading: vmessd is stopping")
            return
        }
        if upgrade != nil {
            answerReloadRequests(startedBefore: .infinity, ok: false, message: "not reloading: a binary upgrade is in progress")
            return
        }
        if pending != nil || settling != nil {
            // One at a time; the latest request is served by one more reload right after this one.
            reloadQueued = true
            logger.notice("reload requested while another is in progress; queued", metadata: ["trigger": "\(reason)"])
            return
        }
        logger.notice("reload requested", metadata: ["trigger": "\(reason)", "config": "\(configPath ?? "<embedded demo>")"])

        // 1. Read and validate.
        let loaded: Config
        if let configPath, rereadConfig {
            switch RunConfig.load(path: configPath) {
            case .success(let c): loaded = c
            case .failure(let error): return rejectReload(error.description)
            }
        } else {
            loaded = loadedConfig
        }
        // Random port allocation (dynamic port): a new choice of ports at every reload.
        let newConfig = PortAllocation.select(loaded, now: Int64(Date().timeIntervalSince1970))
        schedulePortRefresh(loaded)
        let problems = RunConfig.problems(newConfig)
        if !problems.isEmpty {
            return rejectReload(problems.map { "\(newConfig.sourceFile): \($0)" }.joined(separator: "; "))
        }
        let newSettings: Settings
        switch RunConfig.settings(newConfig, overrides: overrides) {
        case .success(let s): newSettings = s
        case .failure(let error): return rejectReload(error.description)
        }
        let newControl = overrides.control ?? newConfig.daemon.control
        if newControl != (overrides.control ?? config.daemon.control), let admin {
            logger.warning("the admin socket path changed in the config; it takes effect at the next start", metadata: [
                "current": "\(admin.path)",
            ])
        }

        // 2. Sockets.
        let plan: ListenerSet.Plan
        do {
            plan = try ListenerSet.plan(config: newConfig, workers: newSettings.workers, previous: listeners, passed: passed)
        } catch {
            return rejectReload("\(error)")
        }
        for note in plan.notes { logger.warning("\(note)") }
        let served = Self.served(newConfig, plan: plan, settings: newSettings, users: runtimeUsers)
        for inbound in plan.set.inbounds where !listeners.inbounds.contains(where: { $0.key == inbound.key }) {
            logger.notice("listening", metadata: [
                "inbound": "\(inbound.name)", "address": "\(inbound.address)", "sockets": "\(inbound.fds.count)",
                "activated": "\(inbound.activated)",
            ])
        }
        loadedConfig = loaded

        // 3. The new generation.
        notifier.reloading(status: "reloading: generation \(lastGeneration + 1) starting; " + statusText())
        startGeneration(config: served, settings: newSettings, plan: plan, initial: false)
    }

    /// An invalid config (or sockets that cannot be opened): nothing changes but the status.
    private func rejectReload(_ reason: String) {
        reloadProblem = "reload failed: \(reason)"
        supervisorMetrics.reloaded(result: "invalid", seconds: 0)
        lastReload = "at \(Self.wallClock()): failed: \(reason)"
        logger.error("reload failed: invalid configuration; still serving the previous one", metadata: [
            "reason": "\(reason)", "generation": "\(generation)",
        ])
        refreshStatus()
        answerReloadRequests(startedBefore: .infinity, ok: false, message: reloadProblem!)
    }

    func answerReloadRequests(startedBefore: Double, ok: Bool, message: String) {
        guard let admin else { return }
        for fd in admin.waiting(for: .reload) {
            guard let client = admin.clients[fd], client.since <= startedBefore else { continue }
            admin.respond(fd, AdminResponse(ok: ok, message: message, status: ok ? status() : nil))
        }
    }

    /// "2026-11-21T23:59:59Z", for the last-reload line of `vmessd ctl status`.
    static func wallClock() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
