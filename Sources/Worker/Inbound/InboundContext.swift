import Logging
import NIOCore
import Shared

/// Everything the connections of one VMess inbound share inside a worker. Built once per worker
/// generation from the validated config; event-loop confined (one loop per worker process).
final class InboundContext {
    let index: Int
    let config: InboundConfig
    /// Replaced (never mutated) when a user is added or removed at runtime: a connection keeps the
    /// table it started its handshake with.
    private(set) var users: UserTable
    let replay: AuthIDReplayFilter
    let sessions: SessionHistory
    let disableInsecure: Bool
    let policy: PolicyConfig
    /// Every outbound, and the routing choice among them.
    let outbounds: OutboundSelector
    let counters: WorkerCounters
    let logger: Logger
    let accessLog: AccessLog?
    /// Largest datagram sent to a client in one piece (ClientLimits.udpDatagramToClient).
    let udpToClient: Int
    /// nil: the inbound does not sniff.
    let sniffing: SniffingPolicy?
    /// `detour`: each accepted client is told to move to this inbound (dynamic port).
    let detour: DetourTarget?
    /// Which API counters the config keeps, and this inbound's own (`inbound>>>TAG>>>traffic>>>…`).
    let statSwitches: StatSwitches
    let meter: TrafficMeter
    /// Per-user limits (nil: none configured, or no shared memory to enforce them across workers).
    let userLimiter: UserLimiter?
    /// Open relaying connections by user id, each with how to end it (runtime removal).
    private var live: [UserID: [ObjectIdentifier: () -> Void]] = [:]

    init(index: Int, config: InboundConfig, settings: VMessInboundSettings, policy: PolicyConfig,
         outbounds: OutboundSelector, replay: AuthIDReplayFilter, counters: WorkerCounters, logger: Logger,
         accessLog: AccessLog? = nil, udpToClient: Int = ClientLimits.defaultUDPToClient,
         statSwitches: StatSwitches = .off, userLimiter: UserLimiter? = nil) throws {
        self.statSwitches = statSwitches
        self.userLimiter = userLimiter
        meter = counters.stats.inboundMeter(statSwitches, tag: config.tag, name: config.tag ?? config.jsonPath)
        self.accessLog = accessLog
        self.udpToClient = udpToClient
        sniffing = try SniffingPolicy.make(config.sniffing)
        self.index = index
        self.config = config
        self.users = try UserTable(settings: settings)
        self.replay = replay
        self.sessions = SessionHistory()
        self.disableInsecure = settings.disableInsecureEncryption
        self.detour = settings.detour
        self.policy = policy
        self.outbounds = outbounds
        self.counters = counters
        var l = logger
        l[metadataKey: "inbound"] = "\(config.tag ?? config.jsonPath)"
        self.logger = l
    }
}

// MARK: runtime users (ControlMessage.addUser / removeUser)

extension InboundContext {
    /// Adds `user` unless a user with its email is already there (the supervisor may announce a user
    /// the worker's config already had).
    func add(_ user: VMessUser) throws {
        guard let id = UserID(text: user.id) else { throw InvalidUserID(text: user.id) }
        guard !users.entries.contains(where: { $0.email == user.email }) else { return }
        users = try users.adding(id: id, alterId: user.alterId, level: user.level, email: user.email)
    }

    /// Removes the user called `email`; `disconnect` also ends its open connections now. Returns how
    /// many connections were ended.
    @discardableResult
    func remove(email: String, disconnect: Bool) -> Int {
        let removed = users.entries.filter { $0.email == email }.map(\.id)
        guard !removed.isEmpty else { return 0 }
        users = users.removing(email: email)
        guard disconnect else { return 0 }
        var ended = 0
        for id in removed {
            for close in (live.removeValue(forKey: id) ?? [:]).values {
                close()
                ended += 1
            }
        }
        return ended
    }

    /// A connection of `id` starts relaying. False when the user was removed while its handshake was
    /// in flight (against the table before the removal): the caller ends the connection.
    func track(_ id: UserID, connection: ObjectIdentifier, close: @escaping () -> Void) -> Bool {
        guard users.contains(id) else { return false }
        live[id, default: [:]][connection] = close
        return true
    }

    func untrack(_ id: UserID, connection: ObjectIdentifier) {
        live[id]?.removeValue(forKey: connection)
        if live[id]?.isEmpty == true { live.removeValue(forKey: id) }
    }
}
