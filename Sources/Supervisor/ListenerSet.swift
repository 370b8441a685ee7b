// The supervisor's listening sockets: per inbound, one SO_REUSEPORT socket per worker, so each worker
// accepts on its own queue and the kernel spreads new connections over them. The supervisor keeps
// every fd open for its lifetime: closing a reuseport socket drops the connections queued on it, and a
// reload or a respawned worker reuses the same sockets.

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
        /// What the kernel bound (the real port when the config said 0).
        var address: SocketAddress
        /// `fds[i]` is worker i's socket.
        var fds: [Int32]
    }

    private(set) var inbounds: [Inbound] = []

    /// Opens `perInbound` sockets for every inbound. All or nothing: on failure, closes what it opened.
    static func open(config: Config, perInbound count: Int) throws -> ListenerSet {
        var set = ListenerSet()
        do {
            for (index, inbound) in config.inbounds.enumerated() {
                set.inbounds.append(try openInbound(inbound, index: index, count: count))
            }
        } catch {
            set.closeAll()
            throw error
        }
        return set
    }

    /// The descriptors worker `worker` gets, one per inbound.
    func listeners(forWorker worker: Int) -> [(inbound: Int, fd: Int32)] {
        inbounds.map { ($0.index, $0.fds[worker]) }
    }

    func closeAll() {
        for inbound in inbounds { for fd in inbound.fds { try? Posix.close(fd) } }
    }

    /// Config paths of inbounds that share one listen address and port. SO_REUSEPORT would let
    /// them bind without complaint and then split one accept queue between two inbounds, so
    /// this is refused as a config error before anything is bound. (Port 0 never collides.)
    static func duplicateAddresses(in config: Config) -> [String] {
        var seen: [String: String] = [:]
        var problems: [String] = []
        for inbound in config.inbounds where inbound.port != 0 {
            let key = ((try? SocketAddress(parsing: inbound.listen, port: inbound.port))?.description)
                ?? "\(inbound.listen):\(inbound.port)"
            if let first = seen[key] {
                problems.append("\(inbound.jsonPath): listens on \(key) like \(first); give each inbound its own address or port")
            } else {
                seen[key] = inbound.jsonPath
            }
        }
        return problems
    }

    private static func openInbound(_ inbound: InboundConfig, index: Int, count: Int) throws -> Inbound {
        var fds: [Int32] = []
        var port = inbound.port
        do {
            if port != 0 { try ensureNotInUse(host: inbound.listen, port: port) }
            for _ in 0..<count {
                fds.append(try Posix.makeListeningSocket(host: inbound.listen, port: port, reusePort: true))
                // Port 0: the first socket lets the kernel pick; the others join that port.
                if port == 0 { port = try Posix.localAddress(fd: fds[0]).port }
            }
            return Inbound(index: index, address: try Posix.localAddress(fd: fds[0]), fds: fds)
        } catch {
            for fd in fds { try? Posix.close(fd) }
            let reason = (error as? AddressError)?.reason ?? "\(error)"
            throw ListenerError(inbound: inbound.jsonPath, address: "\(inbound.listen) port \(port)", reason: reason)
        }
    }

    /// SO_REUSEPORT has a trap: a second vmessd (same user) could join our sockets' group and silently
    /// take a share of the connections. Binding once without SO_REUSEPORT fails with EADDRINUSE if
    /// anyone holds the address, so a busy address is reported instead of shared.
    private static func ensureNotInUse(host: String, port: Int) throws {
        let probe = try Posix.makeBoundSocket(host: host, port: port, reusePort: false)
        try Posix.close(probe)
    }
}
