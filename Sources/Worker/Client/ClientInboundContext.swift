import Logging
import NIOCore
import Shared

/// What the connections of one client-side inbound (socks, http, dokodemo-door) share inside a
/// worker. Event-loop confined.
final class ClientInboundContext {
    let config: InboundConfig
    /// Every outbound, and the routing choice among them.
    let outbounds: OutboundSelector
    /// The policy level of the inbound's `userLevel`: timeouts and buffer bound of every relay.
    let level: LevelPolicy
    let counters: WorkerCounters
    let logger: Logger
    let accessLog: AccessLog?
    /// nil: the inbound does not sniff.
    let sniffing: SniffingPolicy?
    /// `inbound>>>TAG>>>traffic>>>…` when the config keeps them.
    let meter: TrafficMeter

    init(config: InboundConfig, userLevel: Int, policy: PolicyConfig, outbounds: OutboundSelector, counters: WorkerCounters,
         logger: Logger, accessLog: AccessLog?, statSwitches: StatSwitches = .off) throws {
        self.config = config
        sniffing = try SniffingPolicy.make(config.sniffing)
        self.outbounds = outbounds
        self.level = policy.level(userLevel)
        self.counters = counters
        meter = counters.stats.inboundMeter(statSwitches, tag: config.tag, name: config.tag ?? config.jsonPath)
        var l = logger
        l[metadataKey: "inbound"] = "\(config.tag ?? config.jsonPath)"
        self.logger = l
        self.accessLog = accessLog
    }
}
