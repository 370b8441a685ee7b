import NIOCore
import NIOPosix
import Shared

/// A SOCKS5 UDP association (RFC 1928 §7): a UDP relay socket of its own, bound on the address the
/// client reached the inbound at, living exactly as long as the client's TCP control connection.
/// Datagrams are taken only from the client's host (the first one fixes its port); each goes out
/// through the flow of its destination, replies come back with the SOCKS UDP header of their source.
final class SOCKSUDPAssociation: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// Destinations one association may talk to at once.
    static let maxFlows = 64
    static let idleTimeout: TimeAmount = .seconds(120)

    private let inbound: ClientInboundContext
    private let control: Channel
    private let announce: String?
    private var channel: Channel?
    private var client: NIOCore.SocketAddress?
    private var flows: UDPFlowTable<Destination>!
    private var closed = false

    /// `clientHint`: DST.ADDR/DST.PORT of the request. Most clients send zeros; a non-zero port fixes
    /// the client's port from the start.
    init(inbound: ClientInboundContext, control: Channel, clientHint: Destination, announce: String?) {
        self.inbound = inbound
        self.control = control
        self.announce = announce
        if clientHint.port != 0, let peer = control.remoteAddress, let ip = peer.ipAddress {
            client = try? NIOCore.SocketAddress(ipAddress: ip, port: Int(clientHint.port))
        }
        flows = UDPFlowTable(inbound: inbound, loop: control.eventLoop, capacity: Self.maxFlows, idleTimeout: Self.idleTimeout,
                             peer: { [weak self] _ in self?.client.map(VMessServerHandler.peerText) ?? "?" },
                             source: { [weak self] _ in self?.client ?? self?.control.remoteAddress },
                             deliver: { [weak self] _, payload, source in self?.reply(payload, from: source) },
                             flush: { [weak self] in self?.channel?.flush() })
    }

    /// Binds the relay socket; the result is the address and port to tell the client.
    func bind() -> EventLoopFuture<(address: VMessAddress, port: UInt16)> {
        let loop = control.eventLoop
        guard let local = control.localAddress, let host = local.ipAddress else {
            return loop.makeFailedFuture(ChannelError.unknownLocalAddress)
        }
        return DatagramBootstrap(group: loop)
            .readingWholeDatagrams()
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(self) }
            }
            .bind(host: host, port: 0)
            .flatMapThrowing { [self] channel in
                guard !closed else {
                    channel.close(promise: nil)
                    throw ChannelError.ioOnClosedChannel
                }
                self.channel = channel
                let port = UInt16(channel.localAddress?.port ?? 0)
                let text = announce ?? host
                return (IPLiteral.parse(text) ?? .ipv4([0, 0, 0, 0]), port)
            }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let from = envelope.remoteAddress
        // Only the client's host may use the relay; its first datagram fixes the port.
        guard from.ipAddress == control.remoteAddress?.ipAddress else { return }
        if let client, client.port != from.port { return }
        if client == nil { client = from }
        guard let (destination, payload) = SOCKSMessage.parseDatagram(envelope.data) else { return }
        flows.send(payload, key: destination, destination: destination)
    }

    private func reply(_ payload: ByteBuffer, from source: Destination) {
        guard let channel, let client else { return }
        guard channel.isWritable else { return inbound.counters.drop(.udpSlowClient) }
        let header = SOCKSMessage.datagramHeader(source: source)
        var out = channel.allocator.buffer(capacity: header.count + payload.readableBytes)
        out.writeBytes(header)
        out.writeImmutableBuffer(payload)
        channel.write(AddressedEnvelope(remoteAddress: client, data: out), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors on an unconnected socket and the like: UDP carries on.
    }

    func close() {
        guard !closed else { return }
        closed = true
        flows.closeAll()
        channel?.close(promise: nil)
        channel = nil
    }
}
