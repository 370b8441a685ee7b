// Answers to `vmessd ctl`: status (workers, generation, sockets), stats (traffic and rejections from
// shared memory), reload (answered when the reload has finished), stop.

import Foundation
import Glibc
import Shared

extension WorkerPool {
    func handleAdmin(_ request: AdminRequest, client fd: Int32) {
        guard let admin else { return }
        switch request.command {
        case .status:
            admin.respond(fd, AdminResponse(ok: true, message: statusText(), status: status()))
        case .users where request.arguments?.isEmpty == false:
            admin.respond(fd, runtimeUsersCommand(request.arguments ?? []))
        case .stats, .users:
            admin.respond(fd, AdminResponse(ok: true, message: statusText(), stats: stats()))
        case .reload:
            // The client stays connected; answerReloadRequests replies once the reload is decided.
            requestReload(reason: "vmessd ctl reload")
        case .upgrade:
            // Answered once the new binary serves, or has failed (answerUpgrade).
            requestUpgrade(reason: "vmessd ctl upgrade")
        case .stop:
            admin.respond(fd, AdminResponse(ok: true, message: "stopping: draining \(workers.count) workers"))
            requestStop(reason: "vmessd ctl stop")
        }
    }

    /// `vmessd ctl users add INBOUND EMAIL [UUID [LEVEL]]`, `remove INBOUND EMAIL`, `list INBOUND`: the
    /// same runtime user changes as the gRPC API's AlterInbound.
    func runtimeUsersCommand(_ arguments: [String]) -> AdminResponse {
        func answer(_ result: Result<Void, APIFailure>, _ done: String) -> AdminResponse {
            switch result {
            case .success: return AdminResponse(ok: true, message: done)
            case .failure(.rejected(let failure)): return AdminResponse(ok: false, message: failure.description)
            case .failure(.failed(let why)): return AdminResponse(ok: false, message: why)
            }
        }
        switch (arguments.first, arguments.count) {
        case ("add", 3...5):
            let id = arguments.count > 3 ? arguments[3] : UUID().uuidString.lowercased()
            guard let level = arguments.count > 4 ? Int(arguments[4]) : 0 else {
                return AdminResponse(ok: false, message: "LEVEL must be a number")
            }
            let user = VMessUser(id: id, level: level, email: arguments[2])
            return answer(addRuntimeUser(user, inbound: arguments[1]), "added \(arguments[2]) to \(arguments[1]): id \(id.lowercased())")
        case ("remove", 3):
            return answer(removeRuntimeUser(email: arguments[2], inbound: arguments[1]), "removed \(arguments[2]) from \(arguments[1])")
        case ("list", 2):
            switch inboundUsers(arguments[1]) {
            case .success(let users): return AdminResponse(ok: true, message: "\(users.count) users", users: users)
            case .failure(.rejected(let failure)): return AdminResponse(ok: false, message: failure.description)
            case .failure(.failed(let why)): return AdminResponse(ok: false, message: why)
            }
        default:
            return AdminResponse(ok: false, message: "usage: users add INBOUND EMAIL [UUID [LEVEL]] | users remove INBOUND EMAIL | users list INBOUND")
        }
    }

    func status() -> AdminStatus {
        let now = monotonicNow()
        let phaseText: String
        switch phase {
        case .running: phaseText = pending == nil || pending!.initial ? (generation == 0 ? "starting" : "running") : "reloading"
        case .stopping: phaseText = "stopping"
        case .quitting: phaseText = "quitting"
        }
        let workerRows = workers.values.sorted { ($0.generation, $0.index) < ($1.generation, $1.index) }.map { worker in
            let counters = worker.sharedSlot.map { slots.read($0) } ?? WorkerSlotSnapshot()
            let restarts = worker.generation == generation && worker.index < positions.count ? positions[worker.index].backoff.restarts : 0
            return AdminStatus.Worker(index: worker.index, pid: worker.pid, generation: worker.generation,
                                      state: worker.state.rawValue, uptimeSeconds: (now - worker.startedAt).rounded(toPlaces: 1),
                                      connections: counters.open, accepted: counters.accepted, rejected: counters.rejected,
                                      restarts: restarts, acceptErrors: counters.acceptErrors)
        }
        let slotRows = positions.enumerated().map { index, position in
            AdminStatus.Slot(index: index, restarts: position.backoff.restarts, lastExit: position.lastExit,
                             crashLoop: position.backoff.isCrashLooping,
                             nextRestartIn: position.respawnAt.map { max(0, $0 - now).rounded(toPlaces: 1) })
        }
        let listenerRows = listeners.inbounds.map {
            AdminStatus.Listener(inbound: $0.name, address: "\($0.address)", sockets: $0.fds.count, activated: $0.activated)
        }
        return AdminStatus(pid: getpid(), generation: generation, phase: phaseText,
                           uptimeSeconds: (now - startedAt).rounded(toPlaces: 1), config: configPath ?? "<embedded demo>",
                           workersConfigured: settings.workers, connections: openConnections, statusText: statusText(),
                           lastReload: lastReload, workers: workerRows, slots: slotRows, listeners: listenerRows)
    }

    /// Every worker's totals since the region was created: the retired workers' and the live ones'.
    func workerTotals() -> WorkerSlotCounters {
        var total = slots.retired
        for slot in workers.values.compactMap(\.sharedSlot) {
            let s = slots.read(slot)
            total.accepted &+= s.accepted
            total.bytesUp &+= s.bytesUp
            total.bytesDown &+= s.bytesDown
            total.acceptErrors &+= s.acceptErrors
        }
        return total
    }

    func stats() -> AdminStats {
        let totals = workerTotals()
        let accepted = totals.accepted, up = totals.bytesUp, down = totals.bytesDown
        var rejected: [String: UInt64] = [:]
        for entry in reasonTable.entries() { rejected[entry.name, default: 0] += entry.value0 }
        // Full replay-filter buckets that made room by forgetting their oldest AuthID (see Bounds
        // in the runbook): a sign of a flood of fresh handshakes.
        if region.replayBucketOverflows > 0 { rejected["dropped_replay_filter_evictions"] = region.replayBucketOverflows }
        // Open connections and addresses where the workers keep them (per-user limits, online users).
        let limits = config.daemon.userLimits.isEmpty && StatSwitches(config).onlineLevels.isEmpty ? nil : UserLimitTable(region: region)
        let now = MonotonicClock.milliseconds()
        let live = limits?.liveSlots
        let users = userTable.entries()
            .map { entry in
                AdminStats.User(user: entry.name, up: entry.value0, down: entry.value1,
                                open: limits?.openConnections(user: entry.index, live: live),
                                addresses: limits?.sources(user: entry.index, nowMilliseconds: now).map(\.source.text).sorted())
            }
            .sorted { $0.user < $1.user }
        var stats = AdminStats(accepted: accepted, bytesUp: up, bytesDown: down, rejected: rejected, users: users,
                               workerRestarts: totalRestarts, reloads: reloads)
        var inboundsUp: [String: UInt64] = [:], inboundsDown: [String: UInt64] = [:]
        for entry in metricTable.entries() {
            guard let (kind, name) = MetricName.parse(entry.name), kind == .inbound else { continue }
            // Names cut to the entry's bytes can collide: theirs add up.
            inboundsUp[name, default: 0] &+= entry.value0
            inboundsDown[name, default: 0] &+= entry.value1
        }
        stats.inboundsUp = inboundsUp
        stats.inboundsDown = inboundsDown
        return stats
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
