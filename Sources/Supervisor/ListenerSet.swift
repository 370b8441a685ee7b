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
// The worker count can change at a reload. More workers: new sockets join the group. Fewer: the
// surplus sockets are NOT closed (closing a reuseport socket resets what is queued on it, unless
// net.ipv4.tcp_migrate_req=1 moves it elsewhere, which vmessd cannot count on): they stay open and
// in the group, and each worker accepts on every socket whose position maps to it (position p goes
// to worker p % workers), so whatever was queued on a surplus socket is still accepted. A classic BPF
// program on the group (SO_ATTACH_REUSEPORT_CBPF, set when a generation takes over) sends new
// connections only to the first `workers` sockets, at random, so the worker that also serves a
// surplus socket is not loaded more than the others. A group's sockets are only ever appended while
// its address stays in the config, so "the first n" in the kernel's order are fds[0..<n].
//
// A Unix-socket inbound (`listen: "/path"` or `"@name"`) has exactly one socket, shared by all workers:
// AF_UNIX has no reuseport groups, and every worker accepting on the one socket is how the kernel
// spreads its connections. It is kept across reloads by its name like a TCP address; the file a path
// socket created is removed when the socket is closed (left the config, or vmessd stops), and only if
// it is still that socket.

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
        var address: ListenerAddress
        /// One per worker position (position i uses fds[i % count]). With socket activation the
        /// passed sockets come first, then sockets vmessd joined to their SO_REUSEPORT group so that
        /// every worker still accepts on a socket of its own.
        var fds: [Int32]
        /// The passed sockets among `fds` (systemd's: never closed by vmessd).
        var passed: [Int32] = []
        /// The file a Unix path socket vmessd created (removed when the socket is closed).
        var socketFile: UnixSocketFile? = nil

        var activated: Bool { !passed.isEmpty }
        /// The sockets vmessd opened (and closes when they are no longer needed).
        var owned: [Int32] { fds.filter { !passed.contains($0) } }
    }

    private(set) var inbounds: [Inbound] = []
    /// Worker positions the set was planned for (TCP inbounds may hold more sockets than this).
    private(set) var workers = 1

    /// A new set and what switching to it means for descriptors.
    struct Plan {
        var set: ListenerSet
        /// Sockets opened for this plan: closed if the plan is abandoned.
        var opened: [Int32]
        /// Sockets of the previous set the new one does not use: closed once the plan is committed.
        var retired: [Int32]
        /// Things the operator should know (logged by the caller).
        var notes: [String] = []
        /// Socket files created for `opened` / going with `retired`.
        var openedFiles: [UnixSocketFile] = []
        var retiredFiles: [UnixSocketFile] = []

        /// Closes what `opened` holds (the plan is abandoned).
        func abandon() {
            for fd in opened { try? Posix.close(fd) }
            for file in openedFiles { file.remove() }
        }
        /// Closes what `retired` holds (the plan is in force).
        func commit() {
            for fd in retired { try? Posix.close(fd) }
            for file in retiredFiles { file.remove() }
        }
    }

    init() {}

    /// The set a previous supervisor handed over (binary upgrade), to plan the first generation
    /// against: the same sockets by the same keys.
    init(inherited: [Inbound], workers: Int) {
        inbounds = inherited
        self.workers = max(1, workers)
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
            SocketActivation.InboundKey(tag: $0.tag, address: matchAddress($0), unix: $0.unixSocket, datagram: isDatagram($0))
        }
        let assignment = SocketActivation.assign(inbounds: keys, passed: passed)
        var available = previous?.inbounds ?? []
        var result = ListenerSet()
        result.workers = max(1, workers)
        var opened: [Int32] = []
        var openedFiles: [UnixSocketFile] = []
        var notes: [String] = []
        do {
            for (index, inbound) in config.inbounds.enumerated() {
                let name = inbound.tag ?? inbound.jsonPath
                let key = reuseKey(inbound)
                let passedFDs = assignment[index]?.map { passed[$0].fd } ?? []
                // The previous entry for this address (with the same passed sockets, if any).
                let previousEntry = available.firstIndex { $0.key == key && $0.passed == passedFDs }.map { available.remove(at: $0) }
                var entry: Inbound
                if let unix = inbound.unixSocket {
                    // One socket for every worker (see the file comment): no per-worker positions.
                    if var entry = previousEntry {
                        entry.index = index
                        entry.name = name
                        // The mode may have changed (same path, new ",0660"): apply it to the live file.
                        if let file = entry.socketFile, let mode = unix.mode { chmod(file.path, mode_t(mode)) }
                        result.inbounds.append(entry)
                    } else if !passedFDs.isEmpty {
                        result.inbounds.append(Inbound(index: index, key: key, name: name, address: .unix(unix), fds: passedFDs,
                                                       passed: passedFDs))
                    } else {
                        let fresh = try openUnixInbound(inbound, unix: unix, index: index, key: key)
                        opened += fresh.fds
                        if let file = fresh.socketFile { openedFiles.append(file) }
                        result.inbounds.append(fresh)
                    }
                    continue
                }
                if let previousEntry {
                    entry = previousEntry
                    entry.index = index
                    entry.name = name
                } else if !passedFDs.isEmpty {
                    let first = assignment[index]![0]
                    entry = Inbound(index: index, key: key, name: name, address: .tcp(passed[first].address!), fds: passedFDs,
                                    passed: passedFDs)
                } else {
                    let fresh = try openInbound(inbound, index: index, key: key, count: workers)
                    opened += fresh.fds
                    result.inbounds.append(fresh)
                    continue
                }
                // Own sockets wanted next to the passed ones: one per worker position beyond them.
                // More than that (the worker count went down) are kept: see the file comment.
                let wanted = max(0, workers - entry.passed.count)
                var own = entry.owned
                if own.count < wanted {
                    if entry.activated {
                        // Join the passed socket's reuseport group (turning SO_REUSEPORT on for it
                        // if systemd did not), so no two workers ever wait on one socket.
                        do {
                            for fd in entry.passed { try Posix.enableReusePort(fd) }
                            while own.count < wanted {
                                guard case .tcp(let address) = entry.address else { break }
                                let fd = try openSocket(inbound, host: address.host, port: address.port)
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
            for file in openedFiles { file.remove() }
            throw error
        }
        return Plan(set: result, opened: opened, retired: available.flatMap(\.owned), notes: notes, openedFiles: openedFiles,
                    retiredFiles: available.filter { !$0.activated }.compactMap(\.socketFile))
    }

    /// The descriptors worker position `worker` gets, in config order: per inbound one socket, or
    /// several when the inbound holds more sockets than there are workers (position p serves socket
    /// p, p + workers, …; see the file comment).
    func listeners(forWorker worker: Int) -> [(inbound: Int, fd: Int32)] {
        inbounds.flatMap { inbound -> [(inbound: Int, fd: Int32)] in
            guard inbound.fds.count > workers else { return [(inbound.index, inbound.fds[worker % inbound.fds.count])] }
            return stride(from: worker % workers, to: inbound.fds.count, by: workers).map { (inbound.index, inbound.fds[$0]) }
        }
    }

    /// Points every TCP group at its first `workers` sockets (a group holding more, after the worker
    /// count went down, gets nothing new on the surplus), leaving out the positions in `around`:
    /// worker positions with no serving worker (dead, respawning, silent), whose sockets would
    /// otherwise queue their share of new connections until a worker is back. Called when a generation takes
    /// over and when a position's worker goes or comes back (WorkerPool+Steering); failures are
    /// returned for the log (connections then spread over every socket, which costs balance, not
    /// connections).
    func steer(around: Set<Int> = []) -> [String] {
        var problems: [String] = []
        for inbound in inbounds {
            guard case .tcp = inbound.address, let first = inbound.fds.first, inbound.fds.count > 1 || workers > 1 else { continue }
            // Not a UDP (mKCP) group: the program picks a socket per packet at random, which would
            // scatter a client's first datagrams over the workers before its session's own
            // connected socket exists (reuseKey marks UDP groups).
            if inbound.key.hasPrefix("udp ") { continue }
            // Sockets that share systemd's could not join (see plan's notes): leave that group alone.
            if inbound.activated && inbound.fds.count == inbound.passed.count && inbound.fds.count < workers { continue }
            let positions = Array(0..<min(workers, inbound.fds.count))
            let live = positions.filter { !around.contains($0) }
            // Nobody serving anywhere: every socket queues for the workers to come.
            let targets = live.isEmpty ? positions : live
            do {
                try Posix.steerReusePortGroup(first, to: targets)
            } catch {
                problems.append("\(inbound.name): cannot steer new connections to sockets \(targets): \(error)")
            }
        }
        return problems
    }

    /// Every socket vmessd opened itself (passed sockets are systemd's and are never closed).
    var ownedDescriptors: [Int32] { inbounds.flatMap(\.owned) }

    /// Closes every socket vmessd opened and removes the socket files it created.
    func closeAll() {
        closeDescriptors()
        for file in inbounds.compactMap(\.socketFile) { file.remove() }
    }

    /// Closes this process's descriptors only (the sockets live on where a new binary holds them).
    func closeDescriptors() {
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
        if let unix = inbound.unixSocket { return "unix:\(unix)" }
        var address = ((try? SocketAddress(parsing: inbound.listen, port: inbound.port))?.description)
            ?? "\(inbound.listen):\(inbound.port)"
        // A TCP socket is never reused for a UDP inbound on the same address, nor the other way.
        if isDatagram(inbound) { address = "udp " + address }
        return inbound.port == 0 ? "\(address)#\(inbound.tag ?? inbound.jsonPath)" : address
    }

    /// The address a passed socket must be bound to for this inbound (port 0 has none).
    static func matchAddress(_ inbound: InboundConfig) -> SocketAddress? {
        guard inbound.port != 0, inbound.unixSocket == nil else { return nil }
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
                           address: .tcp(try Posix.localAddress(fd: fds[0])), fds: fds)
        } catch {
            for fd in fds { try? Posix.close(fd) }
            let reason = (error as? AddressError)?.reason ?? "\(error)"
            throw ListenerError(inbound: inbound.jsonPath, address: "\(inbound.listen) port \(port)", reason: reason)
        }
    }

    private static func openUnixInbound(_ inbound: InboundConfig, unix: UnixListenAddress, index: Int, key: String) throws -> Inbound {
        do {
            let (fd, file) = try Posix.makeUnixListeningSocket(unix)
            return Inbound(index: index, key: key, name: inbound.tag ?? inbound.jsonPath, address: .unix(unix), fds: [fd],
                           socketFile: file)
        } catch {
            throw ListenerError(inbound: inbound.jsonPath, address: "\(unix)", reason: "\(error)")
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
