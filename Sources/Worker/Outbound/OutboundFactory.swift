import Logging
import Shared

/// Builds the configured outbounds. `dns`: the worker's built-in resolver, for the outbounds that
/// use it (freedom's UseIP* strategies when the config has a `dns` section; the dns outbound always).
enum OutboundFactory {
    /// `proxySettings`: each outbound with a proxy tag gets its dialer through that outbound. The
    /// parser has checked that the tags exist, form no loop and name vmess outbounds only.
    static func connectProxies(_ built: [Outbound], configs: [OutboundConfig], policy: PolicyConfig,
                               counters: WorkerCounters, logger: Logger) throws {
        for (outbound, config) in zip(built, configs) {
            guard let tag = config.proxyTag, let index = configs.firstIndex(where: { $0.tag == tag }) else { continue }
            if let vmess = outbound as? VMessOutbound {
                // Its own transport and protocol run over the proxied connection.
                vmess.dialer.proxy = try ProxyDial(through: built[index], tag: tag, policy: policy, counters: counters, logger: logger)
            } else if let freedom = outbound as? FreedomOutbound {
                // Its requests (after `redirect`) are the proxy's to carry.
                freedom.proxy = built[index]
            }
        }
    }

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
