// AF_UNIX sockets: the per-worker control socketpair (SOCK_SEQPACKET, descriptors passed with
// SCM_RIGHTS) and the admin socket that `vmessd ctl` talks to (SOCK_STREAM on a path).

import CShims
import Glibc

extension Posix {
    /// One received control-socket message.
    public struct ReceivedMessage {
        public var bytes: [UInt8]
        /// Descriptors that came with it (close-on-exec; the caller owns them).
        public var descriptors: [Int32]
        /// The message or its descriptors did not fit the buffers.
        public var truncated: Bool
        /// The peer closed its end (a zero-length read on a SOCK_SEQPACKET socket).
        public var isEndOfFile: Bool { bytes.isEmpty && descriptors.isEmpty }
    }

    /// A connected, close-on-exec AF_UNIX SOCK_SEQPACKET pair: (supervisor end, worker end).
    public static func makeSeqpacketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        try retryingEINTR("socketpair(AF_UNIX, SOCK_SEQPACKET)") { socketpair(AF_UNIX, type, 0, &fds) }
        return (fds[0], fds[1])
    }

    /// A connected, close-on-exec AF_UNIX SOCK_STREAM pair: the byte stream between an mKCP session
    /// and the protocol pipeline that serves it (Worker/Transport/KCPSession).
    public static func makeStreamPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        try retryingEINTR("socketpair(AF_UNIX, SOCK_STREAM)") { socketpair(AF_UNIX, type, 0, &fds) }
        return (fds[0], fds[1])
    }

    /// Sends one message with `descriptors` attached. EAGAIN (a non-blocking socket whose peer is not
    /// reading) is thrown like any other error: control messages are tiny, so a full buffer means a
    /// peer that stopped reading.
    public static func sendMessage(_ fd: Int32, _ bytes: [UInt8], descriptors: [Int32] = []) throws {
        let sent = try bytes.withUnsafeBytes { buffer in
            try descriptors.withUnsafeBufferPointer { fds in
                try retryingEINTR("sendmsg(control \(fd))") {
                    vmessd_send_with_fds(fd, buffer.baseAddress, buffer.count, fds.baseAddress, Int32(fds.count))
                }
            }
        }
        if sent != bytes.count { throw PosixError(errno: EMSGSIZE, call: "sendmsg(control \(fd))") }
    }

    /// Receives one message. Returns nil when `nonBlocking` and nothing is waiting.
    public static func receiveMessage(_ fd: Int32, maximumBytes: Int = 4096, maximumDescriptors: Int = 64,
                                      nonBlocking: Bool = false) throws -> ReceivedMessage? {
        var buffer = [UInt8](repeating: 0, count: maximumBytes)
        var fds = [Int32](repeating: -1, count: maximumDescriptors)
        var count: Int32 = 0
        var truncated: Int32 = 0
        let flags = nonBlocking ? Int32(MSG_DONTWAIT) : 0
        let n: Int
        do {
            n = try buffer.withUnsafeMutableBytes { b in
                try fds.withUnsafeMutableBufferPointer { f in
                    try retryingEINTR("recvmsg(control \(fd))") {
                        vmessd_recv_with_fds_flags(fd, b.baseAddress, b.count, f.baseAddress, Int32(f.count),
                                                   &count, flags, &truncated)
                    }
                }
            }
        } catch let error as PosixError where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return nil
        }
        return ReceivedMessage(bytes: Array(buffer[0..<n]), descriptors: Array(fds[0..<Int(count)]),
                               truncated: truncated != 0)
    }

    public static func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws {
        let flags = try retryingEINTR("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags { try retryingEINTR("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, wanted) } }
    }

    /// Per-call bounds for blocking reads and writes (SO_RCVTIMEO / SO_SNDTIMEO).
    public static func setTimeouts(_ fd: Int32, seconds: Double) throws {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        try retryingEINTR("setsockopt(SO_RCVTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, size) }
        try retryingEINTR("setsockopt(SO_SNDTIMEO)") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, size) }
    }

    // MARK: path sockets

    /// Longest path a sockaddr_un holds (107 bytes on Linux).
    public static let maximumUnixPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    private static func withUnixAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumUnixPathLength else {
            throw PosixError(errno: ENAMETOOLONG, call: "AF_UNIX path \(path) (at most \(maximumUnixPathLength) bytes)")
        }
        return try withUnixAddress(sunPath: bytes + [0], body)
    }

    /// A sockaddr_un holding exactly `sunPath` (a path with its NUL, or an abstract name after its
    /// leading NUL), with the length that makes the kernel read just those bytes.
    static func withUnixAddress<R>(sunPath bytes: [UInt8], _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) throws -> R {
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count <= capacity else {
            throw PosixError(errno: ENAMETOOLONG, call: "AF_UNIX address of \(bytes.count) bytes (at most \(capacity))")
        }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(length))
            }
        }
    }

    /// A close-on-exec AF_UNIX SOCK_STREAM socket listening on `path`, created with `mode` (the umask
    /// is narrowed around bind, so the socket never exists with wider permissions).
    public static func makeUnixListener(path: String, mode: mode_t = 0o600, backlog: Int32 = 16) throws -> Int32 {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumUnixPathLength else {
            throw PosixError(errno: ENAMETOOLONG, call: "AF_UNIX path \(path) (at most \(maximumUnixPathLength) bytes)")
        }
        return try makeUnixListener(sunPath: bytes + [0], label: path, mode: mode, backlog: backlog)
    }

    /// The listener behind both kinds: a file socket (`mode` set, chmod'ed after bind) or an abstract one.
    static func makeUnixListener(sunPath: [UInt8], label: String, mode: mode_t?, backlog: Int32) throws -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, type, 0) }
        do {
            let previous = mode.map { umask(~$0 & 0o777) }
            defer { if let previous { umask(previous) } }
            _ = try withUnixAddress(sunPath: sunPath) { address, length in
                try retryingEINTR("bind(\(label))") { bind(fd, address, length) }
            }
            if let mode { try retryingEINTR("chmod(\(label))") { chmod(label, mode) } }
            try retryingEINTR("listen(\(label))") { listen(fd, backlog) }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Makes way for a new socket at `path`: nothing there, or a socket file nobody answers on (left
    /// by a process that died), which is removed. A socket someone still answers on, or any other
    /// kind of file, is an error: never take over a live service, never delete a user's file.
    public static func removeStaleUnixSocket(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw PosixError(errno: EEXIST, call: "\(path) exists and is not a socket")
        }
        if let live = try? connectUnix(path: path) {
            try? close(live)
            throw PosixError(errno: EADDRINUSE, call: "\(path) (another process answers on it)")
        }
        unlink(path)
    }

    /// A close-on-exec AF_UNIX SOCK_STREAM socket connected to `path`.
    public static func connectUnix(path: String) throws -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try retryingEINTR("socket(AF_UNIX)") { socket(AF_UNIX, type, 0) }
        do {
            _ = try withUnixAddress(path) { address, length in
                try retryingEINTR("connect(\(path))") { connect(fd, address, length) }
            }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Accepts one connection and marks it close-on-exec (accept4 is a GNU extension the Glibc module
    /// does not import; the supervisor is single-threaded and spawns with closefrom, so the window
    /// between the two calls is harmless). Returns nil when nothing is pending.
    public static func accept(_ fd: Int32) throws -> Int32? {
        do {
            let client = try retryingEINTR("accept") { Glibc.accept(fd, nil, nil) }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            return client
        } catch let error as PosixError where error.errno == EAGAIN || error.errno == EWOULDBLOCK || error.errno == ECONNABORTED {
            return nil
        }
    }
}
