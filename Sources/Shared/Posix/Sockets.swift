// Listening sockets. The supervisor creates them (one per inbound per worker, all on the same address
// with SO_REUSEPORT so the kernel spreads connections over the workers) and hands them to workers;
// workers only accept on what they are given.

import CShims
import Glibc

extension Posix {
    /// Creates a bound, listening, close-on-exec TCP socket. Blocking mode: the owner (NIO in the
    /// worker) switches it to non-blocking itself; the supervisor never accepts on it.
    public static func makeListeningSocket(host: String, port: Int, reusePort: Bool = true,
                                           backlog: Int32 = 4096) throws -> Int32 {
        let fd = try makeBoundSocket(host: host, port: port, reusePort: reusePort)
        do {
            try retryingEINTR("listen(\(host) port \(port))") { listen(fd, backlog) }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Creates a bound but not listening close-on-exec TCP socket (also a way to test whether an
    /// address is free without ever accepting a connection on it).
    ///
    /// SO_REUSEADDR lets a restart bind while old connections sit in TIME_WAIT; SO_REUSEPORT (with
    /// `reusePort`) lets several sockets share the address. Binding "::" also accepts IPv4 (v4-mapped),
    /// whatever the net.ipv6.bindv6only sysctl says, the way V2Ray's "::" listen behaves.
    /// `datagram`: a UDP socket instead (mKCP inbounds), bound the same way.
    public static func makeBoundSocket(host: String, port: Int, reusePort: Bool, datagram: Bool = false) throws -> Int32 {
        let address = try SocketAddress(parsing: host, port: port)
        let domain = address.family == .ipv6 ? AF_INET6 : AF_INET
        let type = Int32((datagram ? SOCK_DGRAM : SOCK_STREAM).rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = try retryingEINTR("socket(\(address))") { socket(domain, type, 0) }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT") }
            if address.family == .ipv6 && address.host == "::" {
                try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0, "IPV6_V6ONLY")
            }
            _ = try address.withSockaddr { sa, length in
                try retryingEINTR("bind(\(address))") { bind(fd, sa, length) }
            }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// A UDP socket on `local` (an address whose SO_REUSEPORT group this process may join: the
    /// supervisor's inbound sockets, same user) connected to `remote`. The kernel delivers a
    /// datagram to the connected member of a reuseport group whose 4-tuple it matches before it
    /// picks an unconnected member by hash (udp4_lib_lookup2; Linux 5.x and later), so an mKCP
    /// session's datagrams reach the socket of the worker that holds it, whatever the group's
    /// membership does (a reload's new generation, a different worker count).
    public static func makeConnectedDatagramSocket(local: SocketAddress, remote: SocketAddress) throws -> Int32 {
        let fd = try makeBoundSocket(host: local.host, port: local.port, reusePort: true, datagram: true)
        do {
            _ = try remote.withSockaddr { sa, length in
                try retryingEINTR("connect(udp \(remote))") { connect(fd, sa, length) }
            }
            return fd
        } catch {
            try? close(fd)
            throw error
        }
    }

    /// Turns SO_REUSEPORT on for a socket that is already bound and listening (a socket passed by
    /// systemd without ReusePort=yes), so that sockets of the same user can join its group: the
    /// kernel creates the group when the first one joins.
    public static func enableReusePort(_ fd: Int32) throws {
        try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
    }

    /// Makes the SO_REUSEPORT group `fd` belongs to send new connections only to its sockets at
    /// `indices` (positions in the order they joined), at random. The other sockets stay in the group
    /// and keep what is already queued on them, but get nothing new: how a group keeps more sockets
    /// than there are workers without overloading the workers that serve two of them, and how new
    /// connections go around a worker position that has no accepting worker.
    public static func steerReusePortGroup(_ fd: Int32, to indices: [Int]) throws {
        let table = indices.map { UInt32(clamping: $0) }
        try retryingEINTR("setsockopt(SO_ATTACH_REUSEPORT_CBPF, sockets \(indices))") {
            vmessd_reuseport_steer(fd, table, UInt32(clamping: table.count))
        }
    }

    /// The address a socket is bound to (for port 0: the port the kernel chose).
    public static func localAddress(fd: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try retryingEINTR("getsockname(\(fd))") { getsockname(fd, sa, &length) }
            }
        }
        guard let address = SocketAddress(storage: storage) else {
            throw PosixError(errno: EAFNOSUPPORT, call: "getsockname(\(fd))")
        }
        return address
    }

    private static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32,
                                  _ label: String) throws {
        var value = value
        try retryingEINTR("setsockopt(\(label))") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
