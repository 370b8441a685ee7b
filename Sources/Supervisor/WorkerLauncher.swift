// Starting one worker process: posix_spawn (a Swift process must never fork and keep running Swift in
// the child), with the bootstrap memfd and the worker's listening sockets placed at fixed descriptor
// numbers, every other descriptor closed, and signal state reset to defaults.

import Glibc
import Shared

struct WorkerLauncher {
    /// Descriptor layout in the worker: the bootstrap memfd, then one listener per inbound.
    static let bootstrapFD: Int32 = 3
    static let firstListenerFD: Int32 = 4

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

    /// Spawns one worker and returns its pid. The memfd is closed again before returning; the listener
    /// fds stay the caller's.
    func spawn(workerID: Int, generation: Int, config: Config, listeners: [(inbound: Int, fd: Int32)]) throws -> pid_t {
        // 1. The bootstrap names the descriptor numbers the worker will find, not ours.
        let childListeners = listeners.enumerated().map { offset, listener in
            WorkerBootstrap.Listener(inbound: listener.inbound, fd: Self.firstListenerFD + Int32(offset))
        }
        let bootstrap = WorkerBootstrap(workerID: workerID, generation: generation, config: config, listeners: childListeners)
        let memfd = try Posix.makeMemfd(name: "vmessd-bootstrap-\(workerID)", contents: try bootstrap.encoded(), seal: true)
        defer { try? Posix.close(memfd) }

        // 2. (source in this process, target in the child) pairs.
        var moves: [(source: Int32, target: Int32)] = [(memfd, Self.bootstrapFD)]
        for (offset, listener) in listeners.enumerated() {
            moves.append((listener.fd, Self.firstListenerFD + Int32(offset)))
        }
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

        // 4. Spawn with our environment (NOTIFY_SOCKET etc. stay visible; workers decide what to use).
        let arguments = [executable, "--bootstrap-fd", String(Self.bootstrapFD)]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        try Posix.checkingReturnCode("posix_spawn(\(executable))") {
            posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        }
        return pid
    }
}
