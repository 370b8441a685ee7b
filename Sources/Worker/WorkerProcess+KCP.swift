import Logging
import NIOCore
import NIOPosix
import Shared

extension WorkerProcess {
    /// An mKCP inbound on the UDP socket `fd` the supervisor bound: each session's stream end gets
    /// the same admission and pipeline as an accepted TCP connection (TLS included when configured),
    /// with the UDP client address as the connection's source.
    func serveKCP(fd: Int32, inboundIndex: Int, config: Config, shared: InboundFactory.Shared,
                  loop: EventLoop) throws -> (channel: Channel, listener: KCPListener) {
        let inbound = config.inbounds[inboundIndex]
        let factory = try InboundFactory(index: inboundIndex, inbound: inbound, shared: shared)
        let transport = try InboundTransport(stream: inbound.stream, logger: logger, counters: counters)
        let tracker = self.tracker
        let logger = self.logger
        let name = inbound.tag ?? inbound.jsonPath
        let connections = counters.stats.connectionMeter(.inbound, name)
        let settings = inbound.stream.kcp ?? KCPSettings()
        let listener = try KCPListener(settings: settings, logger: logger) { streamFD, source in
            ClientBootstrap(group: loop)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .proxiedStreamReads()
                .channelInitializer { channel in
                    Self.initializeConnection(channel, tracker: tracker, logger: logger, bySource: false,
                                              connections: connections) { counter in
                        guard counter.claim(source) else {
                            return channel.eventLoop.makeFailedFuture(ConnectionTracker.LimitReached(reason: .sourceLimit))
                        }
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(KCPPeerAddress(source), position: .first)
                        }.flatMap {
                            transport.configure(channel, installProtocol: factory.install)
                        }
                    }
                }
                .withConnectedSocket(streamFD)
                .map { $0 as Channel }
                .flatMapErrorThrowing { error in
                    logger.debug("kcp session refused", metadata: ["peer": "\(source)", "error": "\(error)"])
                    throw error
                }
        }
        let channel = try DatagramBootstrap(group: loop)
            .channelOption(ChannelOptions.autoRead, value: isAccepting)
            .kcpSocketOptions()
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(listener) }
            }
            .withBoundSocket(fd)
            .wait()
        logger.info("serving", metadata: ["inbound": "\(name)", "address": "udp \(channel.localAddress?.description ?? "?")",
                                          "transport": "kcp"])
        return (channel, listener)
    }
}

/// Marks a connection that arrived over mKCP with its UDP client address (the stream itself is a
/// local socketpair): `Channel.clientAddress` reads it.
final class KCPPeerAddress: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let address: NIOCore.SocketAddress
    init(_ address: NIOCore.SocketAddress) { self.address = address }
}
