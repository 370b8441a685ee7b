// Unix-domain listening sockets for inbounds (`listen: "/path"` or `"@name"`), and the file one leaves
// behind.
//
// Unlike TCP there is no SO_REUSEPORT group for AF_UNIX stream sockets (a second bind to the same
// name fails with EADDRINUSE), so an inbound has exactly one such socket and every worker accepts on
// it: the kernel hands each connection to exactly one accept(), whichever worker asks first.

import Glibc

/// The socket file a path listener created, identified by device and inode so that removing it at
/// stop never deletes a file something else has since put at the same path.
public struct UnixSocketFile: Codable, Equatable, Hashable, Sendable {
    public var path: String
    public var device: UInt64
    public var inode: UInt64

    /// Unlinks the path if it is still this socket.
    public func remove() {
        var info = stat()
        guard lstat(path, &info) == 0, UInt64(info.st_dev) == device, UInt64(info.st_ino) == inode else { return }
        unlink(path)
    }
}

extension Posix {
    /// A bound, listening, close-on-exec AF_UNIX stream socket for `address`, and for a path the file
    /// it created. A stale socket file at the path (nobody answers on it) is replaced; a live one or a
    /// non-socket file is an error. The mode (",0666") is applied as the socket is created, never wider.
    public static func makeUnixListeningSocket(_ address: UnixListenAddress, backlog: Int32 = 4096) throws -> (fd: Int32, file: UnixSocketFile?) {
        guard address.kind == .path else {
            return (try makeUnixListener(sunPath: address.sunPath, label: "\(address)", mode: nil, backlog: backlog), nil)
        }
        try removeStaleUnixSocket(path: address.name)
        let fd = try makeUnixListener(sunPath: address.sunPath, label: address.name, mode: address.mode.map { mode_t($0) },
                                      backlog: backlog)
        var info = stat()
        guard lstat(address.name, &info) == 0 else {
            let code = currentErrno()
            try? close(fd)
            throw PosixError(errno: code, call: "lstat(\(address.name))")
        }
        return (fd, UnixSocketFile(path: address.name, device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
    }

    /// The socket's family (SO_DOMAIN): AF_UNIX, AF_INET, AF_INET6.
    public static func socketFamily(_ fd: Int32) throws -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        try retryingEINTR("getsockopt(SO_DOMAIN)") { getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &length) }
        return value
    }

    /// The sun_path bytes an AF_UNIX socket is bound to (as long as the kernel reports), or nil for
    /// another family.
    public static func unixSunPath(fd: Int32) throws -> [UInt8]? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        _ = try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try retryingEINTR("getsockname(\(fd))") { getsockname(fd, sa, &length) }
            }
        }
        guard Int32(address.sun_family) == AF_UNIX else { return nil }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let count = max(0, min(Int(length) - offset, MemoryLayout.size(ofValue: address.sun_path)))
        return withUnsafeBytes(of: &address.sun_path) { Array($0.prefix(count)) }
    }
}
