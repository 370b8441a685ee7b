// The supervisor's listening sockets: per inbound, one SO_REUSEPORT socket per worker position, so each
// worker accepts on its own queue and the kernel spreads new connections over them. With socket
// activation, the sockets systemd passed take the first positions and vmessd joins sockets of its own
// to their reuseport group for the others: still one socket per worker (never two processes waiting
// on one socket), and while vmessd is down systemd's socket alone receives and queues connections.
//
// The supervisor keeps every socket open for as long as its address stays in the config (nginx's
// ngx_init_cycle reuses the old cycle's listening sockets by address in the same way): closing a
// reuseport socket drops the connections queued on it. A reload, or a respawned worker, is handed
// the very same sockets. A reload plans the new set against the old one:
//
//   - same address as before  → the same sockets (plus new ones if the worker count grew);
//   - a new address           → new sockets, closed again if the reload is abandoned;
//   - an address that left    → closed once the new generation serves (`retired`).
//
// With fewer workers than before, the surplus sockets of a kept address are retired too; the kernel
// then resets what was queued on them unless net.ipv4.tcp_migrate_req=1 (deploy/sysctl.d), which makes
// it move those connections to another socket of the group.

import Glibc
import Shared

/// A listener could not be opened; names the inbound so the operator knows which one.
struct ListenerError: Error, CustomStringConvertible {
    var inbound: String
    var address: String
    var reason: String
    var description: String { "\(inbound): cannot listen on \(address): \(reason)" }
}

struct ListenerSet {
    struct Inbound {
        /// Index into `config.inbounds`.
        var index: Int
        /// Identity for reuse across reloads: the configured address ("127.0.0.1:10086"; a port-0
        /// inbound adds its tag or path, since every reload would otherwise get a fresh port).
        var key: String
        /// Tag or JSON path, for logs.
        var name: String
        /// What the kernel bound (the real port when the config said 0).
        var address: SocketAddress
        /// One per worker position (position i uses fds[i % count]). With socket activation the
        /// passed sockets come first, then sockets vmessd joined to their SO_REUSEPORT group so that
        /// every worker still accepts on a socket of its own.
        var fds: [Int32]
        /// The passed sockets among `fds` (systemd's: never closed by vmessd).
        var passed: [Int32] = []

        var activated: Bool { !passed.isEmpty }
        /// The sockets vmessd opened (and closes when they are no longer needed).
        var owned: [Int32] { fds.filter { !passed.contains($0) } }
    }

    private(set) var inbounds: [Inbound] = []

    /// A new set and what switching to it means for descriptors.
    struct Plan {
        var set: ListenerSet
        /// Sockets opened for this plan: closed if the plan is abandoned.
        var opened: [Int32]
        /// Sockets of the previous set the new one does not use: closed once the plan is committed.
        var retired: [Int32]
        /// Things the operator should know (logged by the caller).
        var notes: [String] = []

        /// Closes what `opened` holds (the plan is abandoned).
        func abandon() { for fd in opened { try? Posix.close(fd) } }
        /// Closes what `retired` holds (the plan is in force).
        func commit() { for fd in retired { try? Posix.close(fd) } }
    }

    /// Opens `perInbound` sockets for every inbound. All or nothing: on failure, closes what it opened.
    static func open(config: Config, perInbound count: Int) throws -> ListenerSet {
        try plan(config: config, workers: count, previous: nil, passed: []).set
    }

    /// The sockets `config` needs with `workers` workers, reusing `previous` where the address is
    /// unchanged and taking passed sockets where they match. All or nothing: on failure, everything
    /// opened so far is closed again and `previous` is untouched.
    static func plan(config: Config, workers: Int, previous: ListenerSet?, passed: [PassedSocket]) throws -> Plan {
        let keys = config.inbounds.map {
            SocketActivation.InboundKey(tag: $0.tag, address: matchAddress($0), datagram: isDatagram($0))
        }
        let assignment = SocketActivation.assign(inbounds: keys, passed: passed)
        var available = previous?.inbounds ?? []
        var result = ListenerSet()
        var opened: [Int32] = []
        var notes: [String] = []
        do {
            for (index, inbound) in config.inbounds.enumerated() {
                let name = inbound.tag ?? inbound.jsonPath
                let key = reuseKey(inbound)
                let passedFDs = assignment[index]?.map { passed[$0].fd } ?? []
                // The previous entry for this address (with the same passed sockets, if any).
                let previousEntry = available.firstIndex { $0.key == key && $0.passed == passedFDs }.map { available.remove(at: $0) }
                var entry: Inbound
                if let previousEntry {
                    entry = previousEntry
                    entry.index = index
                    entry.name = name
                } else if !passedFDs.isEmpty {
                    let first = assignment[index]![0]
                    entry = Inbound(index: index, key: key, name: name, address: passed[first].address!, fds: passedFDs, passed: passedFDs)
                } else {
                    let fresh = try openInbound(inbound, index: index, key: key, count: workers)
                    opened += fresh.fds
                    result.inbounds.append(fresh)
                    continue
                }
                // Own sockets wanted next to the passed ones: one per worker position beyond them.
                let wanted = max(0, workers - entry.passed.count)
                var own = entry.owned
                if own.count > wanted {
                    // Surplus positions go with the retired sockets (see the file comment).
                    available.append(Inbound(index: -1, key: "", name: name, address: entry.address, fds: Array(own[wanted...])))
                    own = Array(own[0..<wanted])
                }
                if own.count < wanted {
                    if entry.activated {
                        // Join the passed socket's reuseport group (turning SO_REUSEPORT on for it
                        // if systemd did not), so no two workers ever wait on one socket.
                        do {
                            for fd in entry.passed { try Posix.enableReusePort(fd) }
                            while own.count < wanted {
                                let fd = try openSocket(inbound, host: entry.address.host, port: entry.address.port)
                                opened.append(fd)
                                own.append(fd)
                            }
                        } catch {
                            notes.append("\(name): cannot add sockets to the passed socket's group (\(error)); "
                                         + "its \(workers) workers share \(entry.passed.count) socket(s)")
                        }
                    } else {
                        while own.count < wanted {
                            // Joining our own reuseport group: no "address in use" probe (we are the user).
                            let fd = try openSocket(inbound, host: inbound.listen, port: entry.address.port)
                            opened.append(fd)
                            own.append(fd)
                        }
                    }
                }
                entry.fds = entry.passed + own
                result.inbounds.append(entry)
            }
        } catch {
            for fd in opened { try? Posix.close(fd) }
            throw error
        }
        return Plan(set: result, opened: opened, retired: available.flatMap(\.owned), notes: notes)
    }

    /// The descriptors worker position `worker` gets, one per inbound, in config order.
    func listeners(forWorker worker: Int) -> [(inbound: Int, fd: Int32)] {
        inbounds.map { ($0.index, $0.fds[worker % $0.fds.count]) }
    }

    /// Every socket vmessd opened itself (passed sockets are systemd's and are never closed).
    var ownedDescriptors: [Int32] { inbounds.flatMap(\.owned) }

    func closeAll() {
        for fd in ownedDescriptors { try? Posix.close(fd) }
    }

    /// Config paths of inbounds that share one listen address and port. SO_REUSEPORT would let
    /// them bind without complaint and then split one accept queue between two inbounds, so
    /// this is refused as a config error before anything is bound. (Port 0 never collides.)
    static func duplicateAddresses(in config: Config) -> [String] {
        var seen: [String: String] = [:]
        var problems: [String] = []
        for inbound in config.inbounds where inbound.port != 0 {
            let key = (isDatagram(inbound) ? "udp " : "") + (((try? SocketAddress(parsing: inbound.listen, port: inbound.port))?.description)
                ?? "\(inbound.listen):\(inbound.port)")
            if let first = seen[key] {
                problems.append("\(inbound.jsonPath): listens on \(key) like \(first); give each inbound its own address or port")
            } else {
                seen[key] = inbound.jsonPath
            }
        }
        return problems
    }

    static func reuseKey(_ inbound: InboundConfig) -> String {
        var address = ((try? SocketAddress(parsing: inbound.listen, port: inbound.port))?.description)
            ?? "\(inbound.listen):\(inbound.port)"
        // A TCP socket is never reused for a UDP inbound on the same address, nor the other way.
        if isDatagram(inbound) { address = "udp " + address }
        return inbound.port == 0 ? "\(address)#\(inbound.tag ?? inbound.jsonPath)" : address
    }

    /// The address a passed socket must be bound to for this inbound (port 0 has none).
    static func matchAddress(_ inbound: InboundConfig) -> SocketAddress? {
        guard inbound.port != 0 else { return nil }
        return try? SocketAddress(parsing: inbound.listen, port: inbound.port)
    }

    /// mKCP inbounds listen on UDP: one bound SO_REUSEPORT socket per worker position like the TCP
    /// ones. The kernel picks the socket of a datagram by a hash of its 4-tuple over the group, so
    /// while the group is unchanged every datagram of a client lands on the same worker (the one
    /// holding its session); a reload hands the next generation these very sockets (see
    /// KCPListener on sessions of another generation).
    static func isDatagram(_ inbound: InboundConfig) -> Bool { inbound.stream.network == .kcp }

    private static func makeSocket(_ inbound: InboundConfig, host: String, port: Int) throws -> Int32 {
        isDatagram(inbound)
            ? try Posix.makeBoundSocket(host: host, port: port, reusePort: true, datagram: true)
            : try Posix.makeListeningSocket(host: host, port: port, reusePort: true)
    }

    private static func openSocket(_ inbound: InboundConfig, host: String, port: Int) throws -> Int32 {
        do {
            return try makeSocket(inbound, host: host, port: port)
        } catch {
            let reason = (error as? AddressError)?.reason ?? "\(error)"
            throw ListenerError(inbound: inbound.jsonPath, address: "\(inbound.listen) port \(port)", reason: reason)
        }
    }

    private static func openInbound(_ inbound: InboundConfig, index: Int, key: String, count: Int) throws -> Inbound {
        var fds: [Int32] = []
        var port = inbound.port
        do {
            if port != 0 { try ensureNotInUse(host: inbound.listen, port: port, datagram: isDatagram(inbound)) }
            for _ in 0..<count {
                fds.append(try makeSocket(inbound, host: inbound.listen, port: port))
                // Port 0: the first socket lets the kernel pick; the others join that port.
                if port == 0 { port = try Posix.localAddress(fd: fds[0]).port }
            }
            return Inbound(index: index, key: key, name: inbound.tag ?? inbound.jsonPath,
                           address: try Posix.localAddress(fd: fds[0]), fds: fds)
        } catch {
            for fd in fds { try? Posix.close(fd) }
            let reason = (error as? AddressError)?.reason ?? "\(error)"
            throw ListenerError(inbound: inbound.jsonPath, address: "\(inbound.listen) port \(port)", reason: reason)
        }
    }

    /// SO_REUSEPORT has a trap: a second vmessd (same user) could join our sockets' group and silently
    /// take a share of the connections. Binding once without SO_REUSEPORT fails with EADDRINUSE if
    /// anyone holds the address, so a busy address is reported instead of shared.
    private static func ensureNotInUse(host: String, port: Int, datagram: Bool) throws {
        let probe = try Posix.makeBoundSocket(host: host, port: port, reusePort: false, datagram: datagram)
        try Posix.close(probe)
    }
}
