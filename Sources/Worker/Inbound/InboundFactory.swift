import Logging
import NIOCore
import Shared

/// Turns a configured inbound into the protocol handler that each accepted connection gets (after
/// its transport — raw TCP, WebSocket, httpupgrade, TLS — has been set up by `InboundTransport`).
/// Built once per worker generation.
struct InboundFactory {
    /// Everything the inbounds of one worker share.
    struct Shared {
        var policy: PolicyConfig
        var replay: AuthIDReplayFilter
        var counters: WorkerCounters
        var accessLog: AccessLog?
        var logger: Logger
        /// Without routing rules, V2Ray sends everything to the first outbound.
        var defaultOutbound: Outbound
    }

    let install: (Channel) throws -> Void

    init(index: Int, inbound: InboundConfig, shared s: Shared) throws {
        switch inbound.settings {
        case .vmess(let settings):
            let ctx = try InboundContext(index: index, config: inbound, settings: settings, policy: s.policy,
                                         outbound: s.defaultOutbound, replay: s.replay, counters: s.counters,
                                         logger: s.logger, accessLog: s.accessLog)
            install = { channel in try channel.pipeline.syncOperations.addHandler(VMessServerHandler(inbound: ctx)) }
        }
    }
}

/// Builds the configured outbounds.
enum OutboundFactory {
    static func make(_ o: OutboundConfig, logger: Logger) -> Outbound {
        switch o.settings {
        case .freedom(let f): FreedomOutbound(tag: o.tag, settings: f, logger: logger)
        case .blackhole(let b): BlackholeOutbound(tag: o.tag, settings: b)
        }
    }
}
