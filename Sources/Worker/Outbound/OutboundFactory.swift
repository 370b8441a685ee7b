import Logging
import Shared

/// Builds the configured outbounds. `dns`: the worker's built-in resolver, for the outbounds that
/// use it (freedom's UseIP* strategies when the config has a `dns` section; the dns outbound always).
enum OutboundFactory {
    static func make(_ o: OutboundConfig, counters: WorkerCounters, logger: Logger, dns: DNSResolver? = nil) -> Outbound {
        switch o.settings {
        case .freedom(let f):
            FreedomOutbound(tag: o.tag, settings: f, counters: counters, logger: logger, dns: dns,
                            dial: DialOptions(sockopt: o.sockopt, sendThrough: o.sendThrough))
        case .blackhole(let b): BlackholeOutbound(tag: o.tag, settings: b)
        case .vmess(let v):
            VMessOutbound(tag: o.tag, settings: v, logger: logger, dial: DialOptions(sockopt: o.sockopt, sendThrough: o.sendThrough))
        case .dns(let d):
            // The config parser's model always pairs a dns outbound with a resolver (WorkerProcess).
            DNSOutbound(tag: o.tag, settings: d, dns: dns!, counters: counters, logger: logger)
        }
    }
}
