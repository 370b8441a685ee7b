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
/// A new session starts only from a datagram whose first segment is data with sendingNext 0 — what a
/// client sends first (V2Ray creates one from anything but a terminate). Mid-stream datagrams of a
/// session this worker does not hold (another generation's during a reload, or one that ended here)
/// are dropped instead of growing a session that could never deliver anything.
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
    private var touched: [KCPSession] = []
    private var timer: RepeatedTask?
    private var channel: Channel?
    /// false while draining: existing sessions go on, new ones are not started.
    var accepting = true
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var packet = envelope.data
        guard codec.open(&packet), let conv = packet.getInteger(at: packet.readerIndex, as: UInt16.self),
              let command = packet.getInteger(at: packet.readerIndex + 2, as: UInt8.self) else { return }
        let key = Key(address: envelope.remoteAddress, conv: conv)
        let session: KCPSession
        if let existing = sessions[key] {
            session = existing
        } else {
            guard command == KCPCommand.data.rawValue,
                  packet.getInteger(at: packet.readerIndex + 12, as: UInt32.self) == 0,
                  let created = open(key, context: context) else { return }
            session = created
        }
        session.input(&packet)
        if !session.queuedForFlush {
            session.queuedForFlush = true
            touched.append(session)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        for session in touched {
            session.queuedForFlush = false
            session.flush()
        }
        touched.removeAll(keepingCapacity: true)
        context.flush()
    }

    private func open(_ key: Key, context: ChannelHandlerContext) -> KCPSession? {
        guard accepting, sessions.count < Self.maxSessions,
              perSource[key.address.withPortZero, default: 0] < Self.maxPerSource else { return nil }
        let fds: (Int32, Int32)
        do {
            fds = try Posix.makeStreamPair()
        } catch {
            logger.warning("kcp: cannot create a session stream", metadata: ["error": "\(error)"])
            return nil
        }
        let session = KCPSession(conv: key.conv, settings: settings, codec: codec, remote: key.address, udp: context.channel)
        accept(fds.1, key.address).whenComplete { result in
            switch result {
            case .success(let channel): channel.closeFuture.whenComplete { _ in session.streamClosed() }
            case .failure: session.streamClosed()
            }
        }
        sessions[key] = session
        perSource[key.address.withPortZero, default: 0] += 1
        session.onTerminated = { [weak self] s in self?.remove(Key(address: s.remote, conv: s.connection.conv)) }
        session.attach(outerFD: fds.0, on: context.eventLoop).whenFailure { [weak self, logger] error in
            // The bootstrap owns the descriptor from the start and has closed it.
            logger.debug("kcp: session stream failed", metadata: ["error": "\(error)"])
            session.terminate()
            self?.remove(key)
        }
        return session
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

extension NIOCore.SocketAddress {
    /// The host part only, for per-source counting.
    var withPortZero: NIOCore.SocketAddress {
        var copy = self
        copy.port = 0
        return copy
    }
}
