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
        /// Every outbound; without routing rules everything goes to the first, as in V2Ray.
        var outbounds: OutboundSelector
        /// The worker's event loop, for inbounds that open sockets of their own at start
        /// (dokodemo-door UDP). Without it those are not served and a warning says so.
        var loop: EventLoop? = nil
        var limits = ClientLimits()
        var statSwitches = StatSwitches.off
        /// Per-user limits across workers; nil without shared memory or without any limit configured.
        var userLimiter: UserLimiter? = nil
    }

    /// Installs the protocol handler on `channel` (a connection's socket channel, or an HTTP/2 stream).
    let install: (Channel) throws -> Void
    /// A vmess inbound's shared state (runtime user changes reach it by tag).
    private(set) var vmess: InboundContext?

    init(index: Int, inbound: InboundConfig, shared s: Shared) throws {
        switch inbound.settings {
        case .vmess(let settings):
            let ctx = try InboundContext(index: index, config: inbound, settings: settings, policy: s.policy,
                                         outbounds: s.outbounds, replay: s.replay, counters: s.counters,
                                         logger: s.logger, accessLog: s.accessLog, udpToClient: s.limits.udpDatagramToClient,
                                         statSwitches: s.statSwitches, userLimiter: s.userLimiter)
            install = { channel in
                try channel.pipeline.syncOperations.addHandler(VMessServerHandler(inbound: ctx))
            }
            vmess = ctx
        case .socks(let settings):
            let ctx = try Self.clientContext(inbound, userLevel: settings.userLevel, s)
            install = { channel in
                try channel.pipeline.syncOperations.addHandler(
                    ClientInboundHandler(inbound: ctx, handshake: SOCKSHandshake(settings: settings)))
            }
        case .http(let settings):
            let ctx = try Self.clientContext(inbound, userLevel: settings.userLevel, s)
            install = { channel in
                try channel.pipeline.syncOperations.addHandler(
                    ClientInboundHandler(inbound: ctx, handshake: HTTPProxyHandshake(settings: settings)))
            }
        case .dokodemo(let settings):
            let ctx = try Self.clientContext(inbound, userLevel: settings.userLevel, s)
            let address = IPLiteral.parse(settings.address) ?? .domain(settings.address)
            let port = UInt16(settings.port)
            if settings.udp {
                Self.startDokodemoUDP(ctx, target: Destination(network: .udp, address: address, port: port), loop: s.loop)
            }
            if settings.tcp {
                let target = Destination(network: .tcp, address: address, port: port)
                install = { channel in
                    try channel.pipeline.syncOperations.addHandler(
                        ClientInboundHandler(inbound: ctx, handshake: NoHandshake(), fixedDestination: target))
                }
            } else {
                // UDP only: the supervisor still hands over a TCP listener for the port; nobody is served there.
                install = { channel in channel.close(promise: nil) }
            }
        }
    }

    private static func clientContext(_ inbound: InboundConfig, userLevel: Int, _ s: Shared) throws -> ClientInboundContext {
        try ClientInboundContext(config: inbound, userLevel: userLevel, policy: s.policy, outbounds: s.outbounds,
                             counters: s.counters, logger: s.logger, accessLog: s.accessLog, statSwitches: s.statSwitches)
    }

    private static func startDokodemoUDP(_ ctx: ClientInboundContext, target: Destination, loop: EventLoop?) {
        guard let loop else {
            ctx.logger.warning("dokodemo-door UDP is not served: the worker did not pass its event loop to the inbound factory")
            return
        }
        DokodemoUDPListener.start(inbound: ctx, target: target, loop: loop).whenComplete { result in
            switch result {
            case .success(let channel):
                ctx.logger.info("serving udp", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
            case .failure(let error):
                ctx.logger.error("dokodemo-door UDP: cannot bind \(ctx.config.listen):\(ctx.config.port): \(error)")
            }
        }
    }
}
