import NIOCore
import NIOPosix
import Shared

/// The client side of mKCP (v2fly kcp/dialer.go): one UDP socket and one session per dialed
/// connection, conversation numbers counting up from a random start. Hands back the protocol
/// pipeline's end of the session's socketpair (see KCPSession), which the caller wraps as a stream
/// channel like a TCP connection. mKCP has no handshake: the session exists once the socket is bound,
/// and a server that never answers ends it after V2Ray's 30 s without a packet.
enum KCPDialer {
    /// Only touched on the worker's one event loop.
    nonisolated(unsafe) private static var lastConv = UInt16.random(in: 0...UInt16.max)

    static func nextConv() -> UInt16 {
        lastConv &+= 1
        return lastConv
    }

    /// The pipeline's end of the socketpair, and the session (to be told when that end's channel closes).
    static func dial(host: String, port: Int, settings: KCPSettings,
                     on loop: EventLoop) -> EventLoopFuture<(fd: Int32, session: KCPSession)> {
        let codec: KCPPacketCodec
        do { codec = try KCPPacketCodec(settings: settings) } catch { return loop.makeFailedFuture(error) }
        // getaddrinfo blocks: off the event loop for names, inline for literals.
        let resolved: EventLoopFuture<NIOCore.SocketAddress>
        if let literal = try? NIOCore.SocketAddress(ipAddress: host, port: port) {
            resolved = loop.makeSucceededFuture(literal)
        } else {
            resolved = NIOSingletons.posixBlockingThreadPool.runIfActive(eventLoop: loop) {
                try NIOCore.SocketAddress.makeAddressResolvingHost(host, port: port)
            }
        }
        return resolved.flatMap { remote in
            let handler = KCPClientHandler(remote: remote)
            let wildcard = remote.protocol == .inet6 ? "::" : "0.0.0.0"
            return DatagramBootstrap(group: loop)
                .kcpSocketOptions()
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                .bind(host: wildcard, port: 0)
                .flatMap { udp in
                    let session = KCPSession(conv: nextConv(), settings: settings, codec: codec, remote: remote, udp: udp)
                    handler.start(session: session, codec: codec, tti: settings.tti, channel: udp)
                    let fds: (Int32, Int32)
                    do {
                        fds = try Posix.makeStreamPair()
                    } catch {
                        udp.close(promise: nil)
                        return loop.makeFailedFuture(error)
                    }
                    return session.attach(outerFD: fds.0, on: loop).map { (fds.1, session) }.flatMapErrorThrowing { error in
                        try? Posix.close(fds.1)
                        udp.close(promise: nil)
                        throw error
                    }
                }
        }
    }
}

/// The dialed session's UDP socket: datagrams from the server into the session, and the TTI clock.
final class KCPClientHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let remote: NIOCore.SocketAddress
    private var session: KCPSession?
    private var codec: KCPPacketCodec?
    private var timer: RepeatedTask?

    init(remote: NIOCore.SocketAddress) { self.remote = remote }

    func start(session: KCPSession, codec: KCPPacketCodec, tti: Int, channel: Channel) {
        self.session = session
        self.codec = codec
        let interval = TimeAmount.milliseconds(Int64(tti))
        timer = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let session = self?.session else { return }
            session.flush(force: true)
            channel.flush()
        }
        session.onTerminated = { [weak self] _ in
            self?.timer?.cancel()
            self?.timer = nil
            self?.session = nil
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // Only the server's datagrams (an unconnected socket hears anyone who learns its port).
        guard let session, let codec, envelope.remoteAddress == remote else { return }
        var packet = envelope.data
        guard codec.open(&packet) else { return }
        session.input(&packet)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session?.flush()
        context.flush()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        session?.terminate()
    }
}
