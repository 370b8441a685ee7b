// Starting a program without fork: posix_spawn (a Swift process must never fork and keep running
// Swift in the child) with an explicit descriptor layout and a clean signal state.

import Glibc

extension Posix {
    /// Spawns `executable` with `arguments` (argv[0] included) and `environment` ("KEY=value"). The
    /// child gets `descriptors[i]` as descriptor 3 + i and nothing else besides 0-2 (everything else
    /// is closed); its signal mask is empty and every signal at its default. The caller keeps its own
    /// descriptors.
    public static func spawn(_ executable: String, arguments: [String], environment: [String],
                             descriptors: [Int32]) throws -> pid_t {
        let first: Int32 = 3
        var moves = descriptors.enumerated().map { (source: $0.element, target: first + Int32($0.offset)) }
        // The dup2 actions run in order, so a source lying in the target range could be overwritten
        // by an earlier action before it is copied; and dup2 onto the same number would keep
        // FD_CLOEXEC set, losing the fd at exec. Both vanish if no source lies in the target range:
        // give such sources a temporary close-on-exec copy above it.
        let firstFree = first + Int32(moves.count)
        var temporaries: [Int32] = []
        defer { for fd in temporaries { try? close(fd) } }
        for i in moves.indices where moves[i].source < firstFree {
            let copy = try retryingEINTR("fcntl(F_DUPFD_CLOEXEC)") { fcntl(moves[i].source, F_DUPFD_CLOEXEC, firstFree) }
            temporaries.append(copy)
            moves[i].source = copy
        }

        var actions = posix_spawn_file_actions_t()
        try checkingReturnCode("posix_spawn_file_actions_init") { posix_spawn_file_actions_init(&actions) }
        defer { posix_spawn_file_actions_destroy(&actions) }
        for move in moves {
            try checkingReturnCode("posix_spawn_file_actions_adddup2") {
                posix_spawn_file_actions_adddup2(&actions, move.source, move.target)
            }
        }
        // Everything else is close-on-exec by construction; this also catches a descriptor some
        // library opened without it, so the child starts with exactly 0-2 and what it was given.
        _ = try addCloseFrom(&actions, from: firstFree)

        // The supervisor blocks SIGTERM/SIGCHLD/... and ignores SIGPIPE; a child starts clean.
        var attributes = posix_spawnattr_t()
        try checkingReturnCode("posix_spawnattr_init") { posix_spawnattr_init(&attributes) }
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        try checkingReturnCode("posix_spawnattr_setsigmask") { posix_spawnattr_setsigmask(&attributes, &emptyMask) }
        try checkingReturnCode("posix_spawnattr_setsigdefault") { posix_spawnattr_setsigdefault(&attributes, &defaults) }
        try checkingReturnCode("posix_spawnattr_setflags") {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        }

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        try checkingReturnCode("posix_spawn(\(executable))") {
            posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        }
        return pid
    }

    /// This process's environment as "KEY=value" entries, without the keys in `removing`.
    public static func environment(removing keys: Set<String>) -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            let key = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? text
            if !keys.contains(key) { result.append(text) }
            pointer += 1
        }
        return result
    }

    /// The path this process was started from (/proc/self/exe; " (deleted)" once the file was
    /// replaced, which is why a caller that needs the install path reads it at start).
    public static func executablePath() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try retryingEINTR("readlink(/proc/self/exe)") { readlink("/proc/self/exe", &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
