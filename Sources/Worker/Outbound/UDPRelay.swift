import Logging
import NIOCore
import NIOPosix
import Shared

/// The freedom side of a VMess UDP request (command 2, §9.12): one unconnected datagram socket per
/// VMess connection, sending every datagram to the fixed destination and passing every reply back.
/// The session lives as long as the VMess connection, whose idle timer closes it.
final class UDPRelay: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private weak var peer: VMessServerHandler?
    private var channel: Channel?
    private var destination: NIOCore.SocketAddress?
    /// Datagrams that arrive while the destination resolves; bounded (UDP may drop).
    private var pending: [ByteBuffer] = []
    private static let maxPending = 64
    private var closed = false
    private let logger: Logger

    init(peer: VMessServerHandler, dialer: FreedomDialer, destination: VMessAddress, port: UInt16,
         loop: EventLoop, logger: Logger) {
        self.peer = peer
        self.logger = logger
        dialer.resolve(on: loop, destination, port: port).flatMap { address -> EventLoopFuture<(Channel, NIOCore.SocketAddress)> in
            let bindHost = address.protocol == .inet6 ? "::" : "0.0.0.0"
            return DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(self) }
                }
                .bind(host: bindHost, port: 0)
                .map { ($0, address) }
        }.whenComplete { result in
            switch result {
            case .success(let (channel, address)):
                if self.closed { channel.close(promise: nil); return }
                self.channel = channel
                self.destination = address
                for p in self.pending { self.write(p) }
                self.pending.removeAll()
                channel.flush()
            case .failure(let error):
                logger.debug("udp setup for \(destination):\(port) failed: \(error)")
                self.closed = true
            }
        }
    }

    func send(_ payload: ByteBuffer) {
        guard !closed else { return }
        if channel != nil {
            write(payload)
            channel?.flush()
        } else if pending.count < Self.maxPending {
            pending.append(payload)
        }
    }

    private func write(_ payload: ByteBuffer) {
        guard let channel, let destination, channel.isWritable else { return }
        channel.write(AddressedEnvelope(remoteAddress: destination, data: payload), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer?.downstreamDatagram(unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flushDownstream() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP port unreachable and the like: UDP carries on.
        logger.debug("udp: \(error)")
    }

    func close() {
        closed = true
        channel?.close(promise: nil)
        channel = nil
        pending.removeAll()
    }
}
