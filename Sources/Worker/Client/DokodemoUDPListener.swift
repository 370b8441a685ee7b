import Glibc
import Logging
import NIOCore
import NIOPosix
import Shared

/// The UDP side of a dokodemo-door inbound: every datagram to listen:port goes to the fixed target,
/// one outbound flow per client address, replies go back to that client from the same socket.
///
/// Limitation: the supervisor hands workers listening TCP sockets only, so each worker binds this UDP
/// port itself with SO_REUSEPORT (the kernel keeps one client's datagrams on one worker by hashing
/// its address). The supervisor therefore cannot check the port before the workers start, a bind
/// failure is only logged by the worker, and the socket is not shared with systemd socket activation.
final class DokodemoUDPListener: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    static let maxFlows = 1024
    static let idleTimeout: TimeAmount = .seconds(120)

    private let inbound: ClientInboundContext
    private let target: Destination
    private var channel: Channel?
    private var flows: UDPFlowTable<NIOCore.SocketAddress>!

    init(inbound: ClientInboundContext, target: Destination, loop: EventLoop) {
        self.inbound = inbound
        self.target = target
        flows = UDPFlowTable(inbound: inbound, loop: loop, capacity: Self.maxFlows, idleTimeout: Self.idleTimeout,
                             peer: VMessServerHandler.peerText, source: { $0 },
                             deliver: { [weak self] client, payload, _ in self?.reply(payload, to: client) },
                             flush: { [weak self] in self?.channel?.flush() })
    }

    /// Binds listen:port on `loop`.
    static func start(inbound: ClientInboundContext, target: Destination, loop: EventLoop) -> EventLoopFuture<Channel> {
        let listener = DokodemoUDPListener(inbound: inbound, target: target, loop: loop)
        return DatagramBootstrap(group: loop)
            .readingWholeDatagrams()
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(listener) }
            }
            .bind(host: inbound.config.listen, port: inbound.config.port)
            .map { channel in
                listener.channel = channel
                return channel
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        flows.send(envelope.data, key: envelope.remoteAddress, destination: target)
    }

    private func reply(_ payload: ByteBuffer, to client: NIOCore.SocketAddress) {
        guard let channel, channel.isWritable else { return inbound.counters.drop(.udpSlowClient) }
        channel.write(AddressedEnvelope(remoteAddress: client, data: payload), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {}

    func channelInactive(context: ChannelHandlerContext) {
        flows.closeAll()
        context.fireChannelInactive()
    }
}
