import Logging
import Shared

extension OutboundFactory {
    /// The configured outbounds with the worker's built-in DNS handed to those that resolve through it
    /// (freedom's UseIP* strategies); without one, exactly `make(_:counters:logger:)`.
    static func make(_ o: OutboundConfig, counters: WorkerCounters, logger: Logger, dns: DNSResolver?) -> Outbound {
        if let dns, case .freedom(let settings) = o.settings {
            return FreedomOutbound(tag: o.tag, settings: settings, counters: counters, logger: logger, dns: dns)
        }
        return make(o, counters: counters, logger: logger)
    }
}
