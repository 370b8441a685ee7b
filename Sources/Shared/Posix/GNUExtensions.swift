// Linux/GNU interfaces that Swift's Glibc module does not import (it is built without _GNU_SOURCE):
// constants copied from the kernel ABI, functions looked up in the C library at run time. Looking
// them up (instead of adding C shims) keeps this layer self-contained, and a missing symbol is a
// value the caller can fall back on, not a link failure.

import Glibc

enum GNU {
    // <linux/fcntl.h>: memfd seals. Kernel ABI, fixed since Linux 3.17.
    static let F_ADD_SEALS: Int32 = 1024 + 9
    static let F_SEAL_SEAL: Int32 = 0x0001
    static let F_SEAL_SHRINK: Int32 = 0x0002
    static let F_SEAL_GROW: Int32 = 0x0004
    static let F_SEAL_WRITE: Int32 = 0x0008

    typealias SchedGetaffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer?) -> Int32
    typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// `sched_getaffinity(2)` (glibc, every version).
    static let schedGetaffinity: SchedGetaffinity? = lookup("sched_getaffinity")
    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+).
    static let addClosefrom: AddClosefrom? = lookup("posix_spawn_file_actions_addclosefrom_np")

    private static func lookup<F>(_ name: String) -> F? {
        // dlopen(NULL) is the main program and every library it loaded, libc among them.
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: F.self)
    }
}

extension Posix {
    /// Adds "close every descriptor >= `from`" to spawn file actions. Returns false when this C
    /// library lacks the action (glibc < 2.34); descriptors then rely on close-on-exec alone.
    public static func addCloseFrom(_ actions: inout posix_spawn_file_actions_t, from fd: Int32) throws -> Bool {
        guard let addClosefrom = GNU.addClosefrom else { return false }
        try checkingReturnCode("posix_spawn_file_actions_addclosefrom_np") { addClosefrom(&actions, fd) }
        return true
    }
}
