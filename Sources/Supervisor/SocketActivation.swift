// systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passed in
// LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, and which inbound each one serves.
//
// Matching, per inbound: every passed socket whose name (FileDescriptorName=) equals the inbound's
// tag; failing that, every passed socket bound to exactly the inbound's listen address and port (or
// Unix socket path / abstract name). Only sockets of the inbound's kind match: a TCP inbound takes TCP
// sockets, a Unix-socket inbound Unix ones (every worker shares that one socket). Names are matched before addresses across all inbounds, and a socket serves one inbound at most.
// Several sockets for one inbound (ReusePort=yes with repeated ListenStream= lines) are spread over
// the workers. vmessd never closes a passed socket: systemd owns it, keeps it across restarts of the
// service, and connections queued on it while vmessd restarts are served by the next start.

import CSystemd
import Glibc
import Logging
import Shared

struct PassedSocket: Equatable {
    var fd: Int32
    /// FileDescriptorName= (systemd's default is the socket unit's name, e.g. "vmessd.socket").
    var name: String?
    /// What the socket is bound to; nil when it is not a listening TCP socket.
    var address: SocketAddress?
    /// The sun_path of a listening AF_UNIX stream socket (a path with its NUL, or an abstract name).
    var unixPath: [UInt8]? = nil
    /// A bound UDP socket (ListenDatagram=), for an mKCP inbound.
    var datagram = false

    /// A listening TCP or Unix stream socket, or a UDP one: something an inbound can serve (anything
    /// else is left alone).
    var isUsable: Bool { address != nil || unixPath != nil }
}

enum SocketActivation {
    /// Takes the passed descriptors from the environment (and removes the variables, so workers and
    /// anything else started later do not see them). Empty without socket activation.
    static func takeFromEnvironment(logger: Logger) -> [PassedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        if count < 0 {
            logger.error("cannot read the sockets passed by systemd", metadata: ["error": "\(String(cString: strerror(-count)))"])
            return []
        }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        var passed: [PassedSocket] = []
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) }
            var socket = PassedSocket(fd: fd, name: name, address: nil)
            // A stream socket in listening state, IPv4, IPv6 or Unix (ListenStream=/path or @name), or
            // a UDP socket (ListenDatagram=, mKCP): anything else (Accept=yes connections) cannot carry
            // an inbound and is left alone.
            if sd_is_socket_inet(fd, 0, Int32(SOCK_STREAM.rawValue), 1, 0) > 0 {
                socket.address = try? Posix.localAddress(fd: fd)
            } else if sd_is_socket_inet(fd, 0, Int32(SOCK_DGRAM.rawValue), -1, 0) > 0 {
                socket.address = try? Posix.localAddress(fd: fd)
                socket.datagram = true
            } else if sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 {
                socket.unixPath = (try? Posix.unixSunPath(fd: fd)) ?? nil
            }
            if !socket.isUsable {
                logger.warning("ignoring a passed descriptor that is not a listening TCP or Unix stream socket", metadata: [
                    "fd": "\(fd)", "name": "\(name ?? "-")",
                ])
            }
            passed.append(socket)
        }
        return passed
    }

    /// What identifies an inbound for matching.
    struct InboundKey: Equatable {
        var tag: String?
        /// nil for port 0 or an unparsable listen address (those only match by name).
        var address: SocketAddress?
        /// A Unix-socket inbound: matches Unix sockets only, by name or by this address.
        var unix: UnixListenAddress? = nil
        /// An mKCP inbound: only a passed UDP socket fits it (and only a TCP one fits the others).
        var datagram = false

        /// Whether `socket` is of this inbound's kind (a Unix inbound cannot serve a TCP socket, a
        /// UDP inbound a stream socket, or the other way round: the worker pipelines and the
        /// supervisor's socket handling differ).
        func canServe(_ socket: PassedSocket) -> Bool {
            unix != nil ? socket.unixPath != nil : socket.address != nil && socket.datagram == datagram
        }

        func hasAddress(of socket: PassedSocket) -> Bool {
            if let unix { return socket.unixPath.map(unix.matches(sunPath:)) ?? false }
            return address != nil && socket.address == address && socket.datagram == datagram
        }
    }

    /// For each inbound (by position), the indices into `passed` it gets; inbounds without a match
    /// are absent. Pure.
    static func assign(inbounds: [InboundKey], passed: [PassedSocket]) -> [Int: [Int]] {
        var result: [Int: [Int]] = [:]
        var taken = Set<Int>()
        // 1. By name.
        for (i, inbound) in inbounds.enumerated() {
            guard let tag = inbound.tag else { continue }
            let matches = passed.indices.filter { !taken.contains($0) && inbound.canServe(passed[$0]) && passed[$0].name == tag }
            if !matches.isEmpty {
                result[i] = matches
                taken.formUnion(matches)
            }
        }
        // 2. By address, for inbounds no name matched.
        for (i, inbound) in inbounds.enumerated() where result[i] == nil {
            let matches = passed.indices.filter { !taken.contains($0) && inbound.hasAddress(of: passed[$0]) }
            if !matches.isEmpty {
                result[i] = matches
                taken.formUnion(matches)
            }
        }
        return result
    }
}
