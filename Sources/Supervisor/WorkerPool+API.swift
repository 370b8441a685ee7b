// What the gRPC API (and SIGUSR1) asks of the supervisor, on its main loop (MainLoopBridge): runtime
// user changes, pushed to every worker of every generation, kept in RuntimeUsers (and on disk with a
// state directory); log reopening; the figures of GetSysStats.

import Foundation
import Glibc
import Shared

extension WorkerPool {
    enum APIFailure: Error, Equatable {
        /// The caller's mistake (unknown inbound, duplicate or unknown user, bad id).
        case rejected(RuntimeUsers.Failure)
        /// vmessd could not do it (the users file could not be written).
        case failed(String)
    }

    /// Adds `user` to the vmess inbounds tagged `tag`: saved first (a change that cannot be kept is
    /// not made), then into the served configs (what respawned workers get) and to every worker.
    func addRuntimeUser(_ user: VMessUser, inbound tag: String) -> Result<Void, APIFailure> {
        var changed = runtimeUsers
        do {
            try changed.add(user, toInbound: tag, in: loadedConfig)
        } catch {
            return .failure(Self.rejection(error))
        }
        if let failure = persist(changed) { return .failure(failure) }
        guard let added = changed.inbounds[tag]?.added.last else { return .failure(.failed("user not recorded")) }
        runtimeUsers = changed
        editServedUsers(tag) { users in
            if !users.contains(where: { $0.email == added.email }) { users.append(added) }
        }
        broadcast(.addUser(inbound: tag, user: added))
        logger.notice("user added", metadata: ["inbound": "\(tag)", "email": "\(added.email ?? "")"])
        return .success(())
    }

    func removeRuntimeUser(email: String, inbound tag: String) -> Result<Void, APIFailure> {
        var changed = runtimeUsers
        do {
            try changed.remove(email: email, fromInbound: tag, in: loadedConfig)
        } catch {
            return .failure(Self.rejection(error))
        }
        if let failure = persist(changed) { return .failure(failure) }
        runtimeUsers = changed
        editServedUsers(tag) { users in users.removeAll { $0.email == email } }
        let disconnect = config.daemon.disconnectRemovedUsers
        broadcast(.removeUser(inbound: tag, email: email, disconnect: disconnect))
        logger.notice("user removed", metadata: ["inbound": "\(tag)", "email": "\(email)", "connections": "\(disconnect ? "ended" : "left to finish")"])
        return .success(())
    }

    /// The users inbound `tag` serves now (file users and runtime changes).
    func inboundUsers(_ tag: String) -> Result<[VMessUser], APIFailure> {
        do {
            return .success(try runtimeUsers.users(tag, in: loadedConfig))
        } catch {
            return .failure(Self.rejection(error))
        }
    }

    private static func rejection(_ error: Error) -> APIFailure {
        (error as? RuntimeUsers.Failure).map { .rejected($0) } ?? .failed("\(error)")
    }

    private func persist(_ users: RuntimeUsers) -> APIFailure? {
        guard let userStore else { return nil }
        do {
            try userStore.save(users)
            return nil
        } catch {
            logger.error("cannot save the runtime users; change not made", metadata: ["path": "\(userStore.path)", "error": "\(error)"])
            return .failed("cannot save \(userStore.path): \(error)")
        }
    }

    private func editServedUsers(_ tag: String, _ edit: (inout [VMessUser]) -> Void) {
        config = RuntimeUsers.editing(config, tag: tag, edit)
        if let p = pending { pending!.config = RuntimeUsers.editing(p.config, tag: tag, edit) }
    }

    /// To every worker with a control socket, whatever its generation or state: a draining worker
    /// still holds the removed user's connections, and a starting one may have read its config
    /// before the change (a repeated add is ignored by the worker).
    func broadcast(_ message: ControlMessage) {
        for worker in workers.values where worker.control != nil { _ = send(message, to: worker) }
    }

    /// Starts (or restarts, on a reload that changed it) the gRPC API; nil stops it.
    func startAPI(_ api: APIConfig?) throws {
        self.api?.stop()
        self.api = nil
        guard let api else { return }
        if bridge == nil { bridge = try MainLoopBridge() }
        self.api = try APIServer(config: api, bridge: bridge!, logger: logger)
    }

    /// logrotate moved the files: the supervisor's error log here, every worker's on its own.
    func reopenLogs(reason: String) {
        do {
            try LogFiles.openErrorLog(config.log)
            logger.notice("log files reopened", metadata: ["trigger": "\(reason)"])
        } catch {
            logger.error("cannot reopen the error log", metadata: ["error": "\(error)"])
        }
        broadcast(.reopenLogs)
    }

    /// GetSysStats: the reference reports its Go runtime; vmessd's figures for its processes (see
    /// deploy/RUNBOOK.md "gRPC API").
    struct SysStats: Sendable {
        var uptime: UInt32
        var processes: UInt32
        var residentBytes: UInt64
    }

    func sysStats() -> SysStats {
        let pids = [getpid()] + workers.keys.sorted()
        let resident = pids.reduce(UInt64(0)) { $0 + Self.residentBytes(of: $1) }
        return SysStats(uptime: UInt32(clamping: Int(monotonicNow() - startedAt)), processes: UInt32(pids.count),
                        residentBytes: resident)
    }

    /// VmRSS from /proc/PID/statm (resident pages × page size); 0 if the process is gone.
    static func residentBytes(of pid: pid_t) -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
