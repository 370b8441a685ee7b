// Starting one worker process: posix_spawn (a Swift process must never fork and keep running Swift in
// the child) with exactly three descriptors — the bootstrap memfd at 3, the worker's end of its
// control socket at 4 and the worker binary at 5 — every other descriptor closed, signal state reset
// to defaults, and an environment without systemd's per-process variables. Right after the spawn the
// attach message goes down the control socket carrying the shared-memory memfd and the listening
// sockets (SCM_RIGHTS), so a worker holds nothing it was not explicitly handed.
//
// The worker binary is the one found when this supervisor started, held open and executed through
// its descriptor, never looked up by path again. An operator upgrading installs the new binaries
// before SIGUSR2 (RUNBOOK); a worker that crashes, or a reload, in between must still get a binary
// of this supervisor's release: a newer one would be handed a bootstrap written by older code (and
// fail to decode the config fields it added), an older one would not know this one's.

import CShims
import Glibc
import Shared

final class WorkerLauncher: Sendable {
    /// Descriptor layout in the worker.
    static let bootstrapFD: Int32 = 3
    static let controlFD: Int32 = 4
    /// The worker's own binary: what the spawn executes (`/proc/self/fd/5` in the child). The worker
    /// closes it first thing (`--binary-fd`).
    static let binaryFD: Int32 = 5

    /// Variables that belong to this process only: a worker acting on them would confuse systemd
    /// (notifications from the wrong pid) or itself (LISTEN_FDS naming descriptors it does not have).
    static let privateEnvironment = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                     "WATCHDOG_USEC", "WATCHDOG_PID"]

    /// Where the binary was found: the worker's argv[0] and the name in messages.
    let executable: String
    /// The binary itself (O_PATH, close-on-exec), open for this launcher's life.
    private let binary: Int32

    /// Opens `executable` for every spawn to come.
    init(executable: String) throws {
        let fd = vmessd_open_path(executable)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw LaunchError(description: "cannot open the worker binary \(executable): \(reason)")
        }
        self.executable = executable
        self.binary = fd
    }

    deinit { close(binary) }

    /// `VMESSD_WORKER` if set, else `vmessd-worker` next to this executable (the build and install
    /// layouts both put the two binaries side by side).
    static func locateExecutable() throws -> String {
        if let override = getenv("VMESSD_WORKER").map({ String(cString: $0) }), !override.isEmpty {
            return try checkedExecutable(override, origin: "VMESSD_WORKER")
        }
        let selfPath = try Posix.executablePath()
        let directory = selfPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return try checkedExecutable("\(directory)/vmessd-worker", origin: "next to \(selfPath)")
    }

    private static func checkedExecutable(_ path: String, origin: String) throws -> String {
        guard access(path, X_OK) == 0 else {
            let reason = String(cString: strerror(errno))
            throw LaunchError(description: "worker binary \(path) (\(origin)) is not executable: \(reason); set VMESSD_WORKER to its path")
        }
        return path
    }

    struct LaunchError: Error, CustomStringConvertible { var description: String }

    struct Spawned {
        var pid: pid_t
        /// The supervisor's end of the control socket (close-on-exec, non-blocking).
        var control: Int32
    }

    /// Spawns one worker and sends it its descriptors. The listener and shared-memory descriptors
    /// stay the caller's (the worker gets its own copies).
    func spawn(workerID: Int, generation: Int, config: Config, listeners: [(inbound: Int, fd: Int32)],
               sharedMemory: Int32?, sharedMemorySlot: Int?) throws -> Spawned {
        // 1. The bootstrap: identity, config, which inbound each listener serves.
        let bootstrap = WorkerBootstrap(workerID: workerID, generation: generation, config: config,
                                        listeners: listeners.map { .init(inbound: $0.inbound, fd: -1) },
                                        controlFD: Self.controlFD, sharedMemorySlot: sharedMemorySlot)
        let memfd = try Posix.makeMemfd(name: "vmessd-bootstrap-\(workerID)", contents: try bootstrap.encoded(), seal: true)
        defer { try? Posix.close(memfd) }
        let (ours, theirs) = try Posix.makeSeqpacketPair()
        var keepOurs = false
        defer { if !keepOurs { try? Posix.close(ours) } }
        defer { try? Posix.close(theirs) }

        // bootstrapFD, controlFD and binaryFD are 3, 4 and 5: the spawn's descriptor layout. The
        // kernel opens /proc/self/fd/5 at the exec, in the child, after the dup2s: the binary this
        // launcher opened, whatever is installed at `executable` by now.
        let pid: pid_t
        do {
            pid = try Posix.spawn("/proc/self/fd/\(Self.binaryFD)",
                                  arguments: [executable, "--bootstrap-fd", String(Self.bootstrapFD), "--binary-fd", String(Self.binaryFD)],
                                  environment: Self.workerEnvironment(), descriptors: [memfd, theirs, binary])
        } catch {
            throw LaunchError(description: "cannot start the worker binary \(executable) (as opened when vmessd started): \(error)")
        }

        // 2. The attach message. The socket buffer holds it (and keeps the descriptors alive) until
        // the worker reads it; if it cannot be sent, the worker would wait for nothing: kill it.
        let message = ControlMessage.attach(listeners: listeners.count, sharedMemory: sharedMemory != nil)
        do {
            try Posix.sendMessage(ours, message.encoded(), descriptors: (sharedMemory.map { [$0] } ?? []) + listeners.map(\.fd))
            try Posix.setNonBlocking(ours)
        } catch let error as PosixError where error.errno == EPIPE || error.errno == ECONNRESET || error.errno == ECONNREFUSED {
            // The child is already gone (it failed at once): the caller tracks it like any worker and
            // the reaper reports how it ended, which says more than this send error.
            try? Posix.setNonBlocking(ours)
            keepOurs = true
            return Spawned(pid: pid, control: ours)
        } catch {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            throw error
        }
        keepOurs = true
        return Spawned(pid: pid, control: ours)
    }

    /// What a crashed worker does before it exits. The Swift runtime's backtracer otherwise attaches
    /// to the crashed process and symbolicates every frame, which holds the exit (and so the respawn)
    /// for a second or more. The supervisor still logs the crash with its signal; an operator who
    /// wants full backtraces sets SWIFT_BACKTRACE in the unit, which is passed through unchanged.
    static let crashBehaviour = "SWIFT_BACKTRACE=enable=no"

    /// "KEY=value" entries of our environment, without `privateEnvironment`, plus `crashBehaviour`
    /// unless SWIFT_BACKTRACE is set.
    static func workerEnvironment() -> [String] {
        var result = Posix.environment(removing: Set(privateEnvironment))
        if !result.contains(where: { $0.hasPrefix("SWIFT_BACKTRACE=") }) { result.append(crashBehaviour) }
        return result
    }
}
