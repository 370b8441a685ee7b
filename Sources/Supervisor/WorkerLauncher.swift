// Starting one worker process: posix_spawn (a Swift process must never fork and keep running Swift in
// the child) with exactly two descriptors — the bootstrap memfd at 3 and the worker's end of its
// control socket at 4 — every other descriptor closed, signal state reset to defaults, and an
// environment without systemd's per-process variables. Right after the spawn the attach message
// goes down the control socket carrying the shared-memory memfd and the listening sockets
// (SCM_RIGHTS), so a worker holds nothing it was not explicitly handed.

import Glibc
import Shared

struct WorkerLauncher {
    /// Descriptor layout in the worker.
    static let bootstrapFD: Int32 = 3
    static let controlFD: Int32 = 4

    /// Variables that belong to this process only: a worker acting on them would confuse systemd
    /// (notifications from the wrong pid) or itself (LISTEN_FDS naming descriptors it does not have).
    static let privateEnvironment = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                     "WATCHDOG_USEC", "WATCHDOG_PID"]

    let executable: String

    /// `VMESSD_WORKER` if set, else `vmessd-worker` next to this executable (the build and install
    /// layouts both put the two binaries side by side).
    static func locateExecutable() throws -> String {
        if let override = getenv("VMESSD_WORKER").map({ String(cString: $0) }), !override.isEmpty {
            return try checkedExecutable(override, origin: "VMESSD_WORKER")
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try Posix.retryingEINTR("readlink(/proc/self/exe)") { readlink("/proc/self/exe", &buffer, buffer.count - 1) }
        let selfPath = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
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

        let pid = try spawnProcess(moves: [(memfd, Self.bootstrapFD), (theirs, Self.controlFD)])

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

    /// posix_spawn with `moves` (source in this process, target in the child) as the only
    /// descriptors besides 0-2.
    private func spawnProcess(moves originalMoves: [(source: Int32, target: Int32)]) throws -> pid_t {
        var moves = originalMoves
        // The dup2 actions run in order, so a source lying in the target range could be overwritten
        // by an earlier action before it is copied; and dup2 onto the same number would keep
        // FD_CLOEXEC set, losing the fd at exec. Both vanish if no source lies in the target range:
        // give such sources a temporary close-on-exec copy above it.
        let firstFree = Self.bootstrapFD + Int32(moves.count)
        var temporaries: [Int32] = []
        defer { for fd in temporaries { try? Posix.close(fd) } }
        for i in moves.indices where moves[i].source < firstFree {
            let copy = try Posix.retryingEINTR("fcntl(F_DUPFD_CLOEXEC)") { fcntl(moves[i].source, F_DUPFD_CLOEXEC, firstFree) }
            temporaries.append(copy)
            moves[i].source = copy
        }

        var actions = posix_spawn_file_actions_t()
        try Posix.checkingReturnCode("posix_spawn_file_actions_init") { posix_spawn_file_actions_init(&actions) }
        defer { posix_spawn_file_actions_destroy(&actions) }
        for move in moves {
            try Posix.checkingReturnCode("posix_spawn_file_actions_adddup2") {
                posix_spawn_file_actions_adddup2(&actions, move.source, move.target)
            }
        }
        // Everything else is close-on-exec by construction; this also catches a descriptor some
        // library opened without it, so workers start with exactly 0-2 and their own fds.
        _ = try Posix.addCloseFrom(&actions, from: firstFree)

        // 3. The supervisor blocks SIGTERM/SIGCHLD/... and ignores SIGPIPE; a worker starts clean.
        var attributes = posix_spawnattr_t()
        try Posix.checkingReturnCode("posix_spawnattr_init") { posix_spawnattr_init(&attributes) }
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        try Posix.checkingReturnCode("posix_spawnattr_setsigmask") { posix_spawnattr_setsigmask(&attributes, &emptyMask) }
        try Posix.checkingReturnCode("posix_spawnattr_setsigdefault") { posix_spawnattr_setsigdefault(&attributes, &defaults) }
        try Posix.checkingReturnCode("posix_spawnattr_setflags") {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        }

        // 4. Spawn with our environment minus systemd's per-process variables.
        let arguments = [executable, "--bootstrap-fd", String(Self.bootstrapFD)]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = Self.workerEnvironment().map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        try Posix.checkingReturnCode("posix_spawn(\(executable))") {
            posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        }
        return pid
    }

    /// What a crashed worker does before it exits. The Swift runtime's backtracer otherwise attaches
    /// to the crashed process and symbolicates every frame, which holds the exit (and so the respawn)
    /// for a second or more. The supervisor still logs the crash with its signal; an operator who
    /// wants full backtraces sets SWIFT_BACKTRACE in the unit, which is passed through unchanged.
    static let crashBehaviour = "SWIFT_BACKTRACE=enable=no"

    /// "KEY=value" entries of our environment, without `privateEnvironment`, plus `crashBehaviour`
    /// unless SWIFT_BACKTRACE is set.
    static func workerEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        var backtraceSet = false
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            let key = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? text
            if key == "SWIFT_BACKTRACE" { backtraceSet = true }
            if !privateEnvironment.contains(key) { result.append(text) }
            pointer += 1
        }
        if !backtraceSet { result.append(crashBehaviour) }
        return result
    }
}
