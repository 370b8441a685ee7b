import Logging
import NIOCore
import Shared

/// Everything the connections of one VMess inbound share inside a worker. Built once per worker
/// generation from the validated config; event-loop confined (one loop per worker process).
final class InboundContext {
    let index: Int
    let config: InboundConfig
    let users: UserTable
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

    init(index: Int, config: InboundConfig, settings: VMessInboundSettings, policy: PolicyConfig,
         outbounds: OutboundSelector, replay: AuthIDReplayFilter, counters: WorkerCounters, logger: Logger,
         accessLog: AccessLog? = nil, udpToClient: Int = ClientLimits.defaultUDPToClient) throws {
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

