import Logging
import NIOCore
import Shared

/// The vmess outbound (the client side of VMess): every request becomes a VMess connection to one
/// of the configured servers, or a session on a shared Mux.Cool connection when `mux` is on.
///
/// Servers are used round-robin, and so are the users of each server; a request whose server does
/// not accept the connection fails over to the next server (each tried once). Event-loop confined
/// like everything else in a worker.
final class VMessOutbound: Outbound {
    /// One `vnext` entry.
    final class Server {
        let address: String
        let port: Int
        let users: [VMessClientUser]
        private var next = 0

        init(_ s: VMessOutboundSettings.Server) {
            address = s.address
            port = s.port
            users = s.users.map(VMessClientUser.init)
        }

        func nextUser() -> VMessClientUser {
            defer { next = (next + 1) % users.count }
            return users[next]
        }
    }

    let tag: String?
    let servers: [Server]
    /// Dynamic port: the server a switch-account command pointed at, until it expires. While valid
    /// it is tried first, the configured servers after it (failover).
    private var switched: (server: Server, until: NIODeadline)?
    let stream: StreamSettings
    /// `var` for `proxy`, set once every outbound exists (OutboundFactory.connectProxies).
    var dialer: StreamDialer
    let logger: Logger
    private var nextServer = 0
    private var mux: MuxClientPool?

    init(tag: String?, settings: VMessOutboundSettings, logger: Logger, dial: DialOptions = .none) {
        self.tag = tag
        servers = settings.servers.map(Server.init)
        stream = settings.stream
        dialer = StreamDialer(stream: settings.stream, dial: dial)
        var l = logger
        l[metadataKey: "outbound"] = "\(tag ?? "vmess")"
        self.logger = l
        if let m = settings.mux {
            mux = MuxClientPool(concurrency: m.concurrency, logger: l)
        }
        mux?.outbound = self
    }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        if let mux, destination.address != .domain(MuxClientPool.muxDomain) {
            return mux.open(destination, sink: sink, loop: loop, level: level)
        }
        return openConnection(destination, sink: sink, loop: loop, level: level)
    }

    /// A VMess connection of its own (also what the mux pool carries its sessions on).
    func openConnection(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        VMessClientLink(outbound: self, destination: destination, sink: sink, loop: loop, level: level, logger: logger)
    }

    /// The servers one connection tries, in order: a switched-to server while valid, then the
    /// configured ones round-robin.
    func serverOrder() -> [Server] {
        defer { nextServer = (nextServer + 1) % servers.count }
        let rotated = Array(servers[nextServer...] + servers[..<nextServer])
        guard let switched else { return rotated }
        guard switched.until > .now() else {
            self.switched = nil
            return rotated
        }
        return [switched.server] + rotated
    }

    /// A switch-account command from `server` (vmess-protocol.md §8.5): the next connections go to
    /// its port (on the same address unless it names a host) with its id, as V2Ray's client does.
    func accept(_ command: SwitchAccountCommand, from server: Server, user: VMessClientUser) {
        let address = command.host.isEmpty ? server.address : command.host
        var account = VMessUser(id: command.id.text, alterId: Int(command.alterIds))
        account.security = user.securityName
        let target = Server(VMessOutboundSettings.Server(address: address, port: Int(command.port), users: [account]))
        switched = (target, .now() + .minutes(Int64(command.validMinutes)))
        logger.debug("vmess outbound: switched to \(address):\(command.port) for \(command.validMinutes) min")
    }

    /// Connect timeout per server: the level's handshake time, kept between 4 and 16 s so that a dead
    /// server does not hold a request for a minute before the next one is tried.
    func dialTimeout(_ level: LevelPolicy) -> TimeAmount {
        .seconds(Int64(min(max(level.handshake, 4), 16)))
    }
}
