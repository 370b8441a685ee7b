import Logging
import NIOCore
import NIOPosix
import Shared

/// The server side of mKCP on one UDP socket (v2fly kcp/listener.go): sessions keyed by the client's
/// address and conversation number, each handed to `accept` as a local stream for the inbound's
/// usual pipeline (see KCPSession). One handler per UDP channel, on the worker's event loop; a
/// repeated task every TTI drives retransmissions, acknowledgements, pings and timeouts.
///
/// Bounds: `maxSessions` per listener and `maxPerSource` per client address (the connection
/// tracker's limits apply on top, through `accept`); a datagram that does not open under the
/// configured header and security is dropped before any lookup.
///
/// Each session gets a UDP socket of its own, bound to the listener's address in the same
/// SO_REUSEPORT group and connected to the client (Posix.makeConnectedDatagramSocket): the kernel
/// then hands the client's datagrams to that socket, so they all reach this worker even while a
/// reload's next generation reads the shared listening socket, and a draining worker can stop
/// reading the listening socket at once (`stopAccepting`) while its sessions go on. Without a
/// socket of its own (descriptors exhausted) a session stays on the listening socket.
///
/// A new session starts only from a datagram whose first segment is data number 0 with sendingNext 0 —
/// the first thing a client sends (V2Ray creates one from anything but a terminate). Mid-stream
/// datagrams of a session this worker does not hold (one that ended here, or one steered to this
/// worker before another worker's session got its own socket) are dropped instead of growing a
/// session that could never deliver anything. Number 0 matters, not only sendingNext 0: until its
/// first acknowledgement a client sends every segment with sendingNext 0, and the group's steering
/// of not-yet-pinned clients shifts whenever a session socket joins it. A later segment reaching the
/// other worker then started a second session there, whose own connected socket (for the same
/// address pair) can take the client's datagrams from the real one. A stall that fits this was seen
/// once in CI: a v2ray client's 2 MiB echo stopped at ~94 kB, with a session on each worker.
final class KCPListener: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    struct Key: Hashable {
        var address: NIOCore.SocketAddress
        var conv: UInt16
    }

    /// Given the pipeline's end of the session's socketpair and the client address: the channel
    /// serving it (failed: refused by the limits).
    typealias Accept = (_ streamFD: Int32, _ source: NIOCore.SocketAddress) -> EventLoopFuture<Channel>

    private let settings: KCPSettings
    private let codec: KCPPacketCodec
    private let accept: Accept
    private let logger: Logger
    private var sessions: [Key: KCPSession] = [:]
    private var perSource: [NIOCore.SocketAddress: Int] = [:]
    /// Client addresses that have a connected socket here.
    private var pinned = Set<NIOCore.SocketAddress>()
    private var touched: [KCPSession] = []
    private var timer: RepeatedTask?
    private var channel: Channel?
    /// false while draining: existing sessions go on, new ones are not started.
    private(set) var accepting = true
    static let maxSessions = 16384
    static let maxPerSource = 256

    init(settings: KCPSettings, logger: Logger, accept: @escaping Accept) throws {
        self.settings = settings
        self.codec = try KCPPacketCodec(settings: settings)
        self.accept = accept
        self.logger = logger
    }

    var sessionCount: Int { sessions.count }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
        let interval = TimeAmount.milliseconds(Int64(settings.tti))
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.tick()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        for session in Array(sessions.values) { session.terminate() }
        sessions.removeAll()
    }

    /// Draining: no new session, and the listening socket is left to the next generation (this
    /// worker's sessions have sockets of their own).
    func stopAccepting() {
        accepting = false
        channel?.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data), on: context.channel)
    }

    /// A datagram from the listening socket or from a session's own socket.
    func receive(_ envelope: AddressedEnvelope<ByteBuffer>, on channel: Channel) {
        var packet = envelope.data
        guard codec.open(&packet), let conv = packet.getInteger(at: packet.readerIndex, as: UInt16.self),
              let command = packet.getInteger(at: packet.readerIndex + 2, as: UInt8.self) else { return }
        let key = Key(address: envelope.remoteAddress, conv: conv)
        let session: KCPSession
        if let existing = sessions[key] {
            session = existing
        } else {
            // Data segment: conv 2 | command 1 | option 1 | timestamp 4 | number 4 | sendingNext 4.
            guard command == KCPCommand.data.rawValue,
                  packet.getInteger(at: packet.readerIndex + 8, as: UInt32.self) == 0,
                  packet.getInteger(at: packet.readerIndex + 12, as: UInt32.self) == 0,
                  let created = open(key) else { return }
            session = created
        }
        session.input(&packet)
        if !session.queuedForFlush {
            session.queuedForFlush = true
            touched.append(session)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readComplete()
    }

    func readComplete() {
        for session in touched {
            session.queuedForFlush = false
            session.flush()
        }
        touched.removeAll(keepingCapacity: true)
        channel?.flush()
    }

    private func open(_ key: Key) -> KCPSession? {
        guard let listening = channel, accepting, sessions.count < Self.maxSessions,
              perSource[key.address.withPortZero, default: 0] < Self.maxPerSource else { return nil }
        let fds: (Int32, Int32)
        do {
            fds = try Posix.makeStreamPair()
        } catch {
            logger.warning("kcp: cannot create a session stream", metadata: ["error": "\(error)"])
            return nil
        }
        let loop = listening.eventLoop
        let session = KCPSession(conv: key.conv, settings: settings, codec: codec, remote: key.address, udp: listening)
        accept(fds.1, key.address).whenComplete { result in
            switch result {
            case .success(let channel): channel.closeFuture.whenComplete { _ in session.streamClosed() }
            case .failure: session.streamClosed()
            }
        }
        sessions[key] = session
        perSource[key.address.withPortZero, default: 0] += 1
        // One connected socket per client address: a second conversation from the same address and
        // port (V2Ray dials each from a new port, but a client may not) shares the first one's.
        let pinning = pinned.insert(key.address).inserted
        session.onTerminated = { [weak self] s in
            self?.remove(Key(address: s.remote, conv: s.connection.conv))
            if pinning { self?.pinned.remove(s.remote) }
            if s.udp !== listening { s.udp.close(promise: nil) }
        }
        if pinning { pin(session, listening: listening) }
        session.attach(outerFD: fds.0, on: loop).whenFailure { [weak self, logger] error in
            // The bootstrap owns the descriptor from the start and has closed it.
            logger.debug("kcp: session stream failed", metadata: ["error": "\(error)"])
            session.terminate()
            self?.remove(key)
        }
        return session
    }

    /// The session's own connected socket (see the type's comment).
    private func pin(_ session: KCPSession, listening: Channel) {
        guard let local = listening.localAddress, let localIP = local.ipAddress, let localPort = local.port,
              let remoteIP = session.remote.ipAddress, let remotePort = session.remote.port else { return }
        let fd: Int32
        do {
            fd = try Posix.makeConnectedDatagramSocket(
                local: Shared.SocketAddress(family: local.protocol == .inet6 ? .ipv6 : .ipv4, host: localIP, port: localPort),
                remote: Shared.SocketAddress(family: session.remote.protocol == .inet6 ? .ipv6 : .ipv4, host: remoteIP, port: remotePort))
        } catch {
            logger.debug("kcp: session keeps the listening socket", metadata: ["error": "\(error)"])
            return
        }
        DatagramBootstrap(group: listening.eventLoop)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 64)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { throw ChannelError.ioOnClosedChannel }
                    try channel.pipeline.syncOperations.addHandler(KCPSessionSocketHandler(listener: self))
                }
            }
            .withBoundSocket(fd)
            .whenComplete { [logger] result in
                switch result {
                case .success(let channel):
                    if session.connection.isTerminated {
                        channel.close(promise: nil)
                    } else {
                        session.pin(to: channel)
                    }
                case .failure(let error):
                    logger.debug("kcp: session keeps the listening socket", metadata: ["error": "\(error)"])
                }
            }
    }

    private func remove(_ key: Key) {
        guard sessions.removeValue(forKey: key) != nil else { return }
        let source = key.address.withPortZero
        let n = perSource[source, default: 1] - 1
        perSource[source] = n > 0 ? n : nil
    }

    private func tick() {
        for session in Array(sessions.values) { session.flush() }
        channel?.flush()
    }
}

/// A session's own connected socket: its datagrams go through the listener like the listening
/// socket's (the session is found by address and conversation as always).
final class KCPSessionSocketHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private weak var listener: KCPListener?

    init(listener: KCPListener) { self.listener = listener }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        listener?.receive(unwrapInboundIn(data), on: context.channel)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        listener?.readComplete()
    }
}

extension NIOCore.SocketAddress {
    /// The host part only, for per-source counting.
    var withPortZero: NIOCore.SocketAddress {
        var copy = self
        copy.port = 0
        return copy
    }
}
