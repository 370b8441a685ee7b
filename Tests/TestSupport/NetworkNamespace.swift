// Lets the end-to-end tests reach servers inside the systemd sandbox's network namespace with the
// same blocking-socket harness (Sockets.swift) the other tests use.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// While a test has entered a network namespace (the systemd sandbox's), every socket this harness
/// creates is created inside it: the creating thread switches into the namespace for the socket()
/// call and back. A socket belongs to the namespace it was created in for its whole life, whichever
/// thread uses it later, so connect/accept/read/write need nothing special.
public enum NetworkNamespace {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var target: Int32?
    private typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    /// setns(2) (a GNU extension the Glibc module does not import).
    private static let setns: SetNS? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "setns") else { return nil }
        return unsafeBitCast(symbol, to: SetNS.self)
    }()
    private static let newNet: Int32 = 0x4000_0000 // CLONE_NEWNET

    /// Creates the harness's sockets in the network namespace of `pid` until `leave()`.
    public static func enter(pid: pid_t) throws {
        guard setns != nil else { throw SocketError.unexpected("setns is not available") }
        let fd = open("/proc/\(pid)/ns/net", O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SocketError.call("open(/proc/\(pid)/ns/net)", errno) }
        lock.lock(); defer { lock.unlock() }
        if let old = target { close(old) }
        target = fd
    }

    public static func leave() {
        lock.lock(); defer { lock.unlock() }
        if let old = target { close(old) }
        target = nil
    }

    public static func creatingSockets(_ body: () -> Int32) -> Int32 {
        lock.lock()
        guard let target, let setns else {
            lock.unlock()
            return body()
        }
        defer { lock.unlock() }
        let home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard home >= 0, setns(target, newNet) == 0 else {
            if home >= 0 { close(home) }
            errno = EPERM
            return -1
        }
        let fd = body()
        let saved = errno
        _ = setns(home, newNet)
        close(home)
        errno = saved
        return fd
    }
}
