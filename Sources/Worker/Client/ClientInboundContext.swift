import Logging
import NIOCore
import Shared

/// What the connections of one client-side inbound (socks, http, dokodemo-door) share inside a
/// worker. Event-loop confined.
final class ClientInboundContext {
    let config: InboundConfig
    let outbound: Outbound
    /// The policy level of the inbound's `userLevel`: timeouts and buffer bound of every relay.
    let level: LevelPolicy
    let counters: WorkerCounters
    let logger: Logger
    let accessLog: AccessLog?

    init(config: InboundConfig, userLevel: Int, policy: PolicyConfig, outbound: Outbound, counters: WorkerCounters,
         logger: Logger, accessLog: AccessLog?) {
        self.config = config
        self.outbound = outbound
        self.level = policy.level(userLevel)
        self.counters = counters
        var l = logger
        l[metadataKey: "inbound"] = "\(config.tag ?? config.jsonPath)"
        self.logger = l
        self.accessLog = accessLog
    }
}
