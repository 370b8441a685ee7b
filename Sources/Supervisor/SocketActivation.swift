// systemd socket activation (sd_listen_fds(3)): the listening sockets systemd passed in
// LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES, and which inbound each one serves.
//
// Matching, per inbound: every passed socket whose name (FileDescriptorName=) equals the inbound's
// tag; failing that, every passed socket bound to exactly the inbound's listen address and port.
// Names are matched before addresses across all inbounds, and a socket serves one inbound at most.
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
    /// What the socket is bound to; nil when it is not a listening TCP socket (then it is not used).
    var address: SocketAddress?
    /// A bound UDP socket (ListenDatagram=), for an mKCP inbound.
    var datagram = false
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
            var address: SocketAddress?
            var datagram = false
            // A stream socket in listening state, IPv4 or IPv6, or a UDP socket (mKCP): anything else
            // (AF_UNIX, Accept=yes connections) cannot carry an inbound and is left alone.
            if sd_is_socket_inet(fd, 0, Int32(SOCK_STREAM.rawValue), 1, 0) > 0 {
                address = try? Posix.localAddress(fd: fd)
            } else if sd_is_socket_inet(fd, 0, Int32(SOCK_DGRAM.rawValue), -1, 0) > 0 {
                address = try? Posix.localAddress(fd: fd)
                datagram = true
            }
            if address == nil {
                logger.warning("ignoring a passed descriptor that is not a listening TCP socket", metadata: [
                    "fd": "\(fd)", "name": "\(name ?? "-")",
                ])
            }
            passed.append(PassedSocket(fd: fd, name: name, address: address, datagram: datagram))
        }
        return passed
    }

    /// What identifies an inbound for matching.
    struct InboundKey: Equatable {
        var tag: String?
        /// nil for port 0 or an unparsable listen address (those only match by name).
        var address: SocketAddress?
        /// An mKCP inbound: only a passed UDP socket fits it (and only a TCP one fits the others).
        var datagram = false
    }

    /// For each inbound (by position), the indices into `passed` it gets; inbounds without a match
    /// are absent. Pure.
    static func assign(inbounds: [InboundKey], passed: [PassedSocket]) -> [Int: [Int]] {
        var result: [Int: [Int]] = [:]
        var taken = Set<Int>()
        // 1. By name.
        for (i, inbound) in inbounds.enumerated() {
            guard let tag = inbound.tag else { continue }
            let matches = passed.indices.filter { !taken.contains($0) && passed[$0].address != nil && passed[$0].name == tag
                && passed[$0].datagram == inbound.datagram }
            if !matches.isEmpty {
                result[i] = matches
                taken.formUnion(matches)
            }
        }
        // 2. By address, for inbounds no name matched.
        for (i, inbound) in inbounds.enumerated() where result[i] == nil {
            guard let address = inbound.address else { continue }
            let matches = passed.indices.filter { !taken.contains($0) && passed[$0].address == address
                && passed[$0].datagram == inbound.datagram }
            if !matches.isEmpty {
                result[i] = matches
                taken.formUnion(matches)
            }
        }
        return result
    }
}
