// One error type for every failed system call, so callers can log "what failed and why" without each
// call site formatting errno itself.

import Glibc

/// A system call failed: which call, and the errno it left.
public struct PosixError: Error, CustomStringConvertible, Equatable, Sendable {
    public var errno: Int32
    /// The call, possibly with the argument that matters ("bind(0.0.0.0:443)").
    public var call: String

    public init(errno: Int32, call: String) {
        self.errno = errno
        self.call = call
    }

    public var description: String {
        "\(call): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Namespace for the thin syscall layer shared by the supervisor and the workers.
public enum Posix {
    /// Runs a call that returns -1 and sets errno on failure, retrying while it fails with EINTR.
    /// Every syscall in this layer goes through here (or `checkingReturnCode`), so no call site forgets
    /// the EINTR case or loses errno to an intervening call.
    @discardableResult
    public static func retryingEINTR<T: BinaryInteger>(_ call: @autoclosure () -> String,
                                                       _ body: () -> T) throws -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = currentErrno()
            if code == EINTR { continue }
            throw PosixError(errno: code, call: call())
        }
    }

    /// Runs a call of the pthread/posix_spawn family, which returns the error number instead of setting
    /// errno (0 = success). EINTR is retried here too.
    public static func checkingReturnCode(_ call: @autoclosure () -> String, _ body: () -> Int32) throws {
        while true {
            let code = body()
            if code == 0 { return }
            if code == EINTR { continue }
            throw PosixError(errno: code, call: call())
        }
    }

    /// Closes a descriptor. EINTR is deliberately NOT retried: on Linux the descriptor is released even
    /// when close reports EINTR, and retrying could close a descriptor another thread just got.
    public static func close(_ fd: Int32) throws {
        if Glibc.close(fd) == -1 {
            let code = currentErrno()
            if code == EINTR { return }
            throw PosixError(errno: code, call: "close(\(fd))")
        }
    }

    static func currentErrno() -> Int32 {
        Glibc.errno
    }
}
