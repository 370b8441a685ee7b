import NIOCore
import NIOPosix
import Shared

/// The shell around one mKCP session (KCPConnection, the pure ARQ core): it carries the session's
/// bytes to and from a local byte stream, and its segments to and from UDP.
///
/// The local stream is one end of an AF_UNIX stream socketpair (`outer`, a NIO channel with
/// KCPStreamHandler); the other end is an ordinary stream channel on which the protocol pipeline
/// (VMess server, or the VMess client and TLS) runs exactly as on a TCP connection. That costs a
/// kernel copy per direction and two descriptors per session, and buys the whole existing pipeline,
/// its limits and its backpressure unchanged. Backpressure both ways:
///   stream → KCP: `outer` reads only while the send window has room (autoRead off);
///   KCP → stream: payloads leave the receive window only while `outer` is writable, so a slow local
///                 reader stops the window the peer sees.
/// Event-loop confined (the worker's one loop).
final class KCPSession {
    let connection: KCPConnection
    /// Where this session's datagrams go (the client address on a server, the server on a client).
    let remote: NIOCore.SocketAddress
    private let codec: KCPPacketCodec
    /// Where datagrams leave: the listener's socket until the session's own connected socket is
    /// ready (KCPListener), or the dialer's socket.
    private(set) var udp: Channel
    private(set) var outer: Channel?
    /// Stream bytes the send window had no room for, in order; no new `read()` is asked for while
    /// this is set, so it holds at most what one read brings (maxMessagesPerRead buffers).
    private var pending: ByteBuffer?
    /// The stream sent its last byte (half-close): nothing more to read from it.
    private var streamEnded = false
    /// The pipeline's end of the socketpair is closed (its closeFuture; from here an EOF cannot tell
    /// a close from a half-close): once its last bytes are read and in the send window, the session
    /// closes. A half-close alone does not close it: V2Ray's Close also ends reading, and VMess
    /// marks the end of each direction in its own framing.
    private var closeRequested = false
    private var outerClosing = false
    private var readRequested = false
    /// Called once when the session is over (terminated), for the owner's table (and the session's
    /// own socket, if it has one).
    var onTerminated: ((KCPSession) -> Void)?
    private var finished = false
    /// Marked while queued for the owner's end-of-batch flush.
    var queuedForFlush = false
    private let tti: UInt64
    private var lastFlush: UInt64 = 0

    init(conv: UInt16, settings: KCPSettings, codec: KCPPacketCodec, remote: NIOCore.SocketAddress, udp: Channel) {
        self.codec = codec
        self.remote = remote
        self.udp = udp
        tti = UInt64(settings.tti)
        connection = KCPConnection(conv: conv, settings: settings, overhead: codec.overhead, now: Self.now(),
                                   allocator: udp.allocator)
        let mtu = settings.mtu
        connection.output = { [unowned self] segment in
            var packet = self.udp.allocator.buffer(capacity: mtu + 32)
            self.codec.seal(segment, into: &packet)
            self.udp.write(AddressedEnvelope(remoteAddress: self.remote, data: packet), promise: nil)
        }
    }

    /// Monotonic milliseconds.
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds / 1_000_000 }

    /// Wraps `fd` (one end of the socketpair) as this session's local stream.
    func attach(outerFD fd: Int32, on loop: EventLoop) -> EventLoopFuture<Void> {
        ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(KCPStreamHandler(session: self))
                }
            }
            .withConnectedSocket(fd)
            .map { [self] channel in
                outer = channel
                if finished { channel.close(promise: nil) } else { pump() }
            }
    }

    // MARK: events

    /// One opened datagram from the peer.
    func input(_ segments: inout ByteBuffer) {
        connection.input(&segments, now: Self.now())
        pump()
    }

    /// Every TTI (`force`), and at the end of a batch of datagrams or stream reads: then only if
    /// the last flush is a TTI ago. V2Ray's updater flushes at once when woken and then once per TTI
    /// while busy; flushing after every batch instead would send an acknowledgement per batch, and
    /// each one pulls the peer's retransmission timers in by a third of an RTO (fast ack): a
    /// retransmission storm on a fast link.
    func flush(force: Bool = false) {
        let now = Self.now()
        if force || now &- lastFlush >= tti {
            lastFlush = now
            connection.flush(now: now)
        }
        pump()
        udp.flush()
    }


    /// From now on the session sends from `channel` (its own connected socket).
    func pin(to channel: Channel) {
        udp.flush()
        udp = channel
    }

    /// One `read()` may bring several reads (the channel's maxMessagesPerRead): a read that finds
    /// bytes already waiting goes behind them, never over them.
    func streamRead(_ buffer: ByteBuffer) {
        readRequested = false
        guard connection.state == .active else { return }  // V2Ray refuses writes after a close too
        if pending != nil {
            pending!.writeImmutableBuffer(buffer)
            return
        }
        var data = buffer
        connection.write(&data)
        if data.readableBytes > 0 { pending = data }
    }

    /// EOF on our end of the socketpair.
    func streamInputEnded() {
        streamEnded = true
        readRequested = false
        pump()
    }

    /// The pipeline's channel closed (or ours did).
    func streamClosed() {
        closeRequested = true
        pump()
    }

    /// The owner is going away (listener closed): end at once.
    func terminate() {
        connection.terminate(now: Self.now())
        pump()
    }

    /// Moves what can move: pending stream bytes into the send window, in-order payloads into the
    /// stream, more stream reads when there is room, and the close of the stream when the session ends.
    func pump() {
        if var data = pending {
            connection.write(&data)
            pending = data.readableBytes > 0 && connection.state == .active ? data : nil
        }
        if closeRequested, streamEnded, pending == nil, connection.state == .active || connection.state == .peerClosed
            || connection.state == .peerTerminating {
            connection.close(now: Self.now())
        }
        guard let outer else {
            if connection.isTerminated { finish() }
            return
        }
        var wrote = false
        connection.read { payload in
            guard outer.isWritable else { return false }
            outer.write(payload, promise: nil)
            wrote = true
            return true
        }
        if wrote { outer.flush() }
        if pending == nil, !streamEnded, !readRequested, connection.canWrite {
            readRequested = true
            outer.read()
        }
        if connection.readClosed, !outerClosing {
            outerClosing = true
            // After what was written: writes complete in order.
            outer.writeAndFlush(outer.allocator.buffer(capacity: 0)).whenComplete { _ in outer.close(promise: nil) }
        }
        if connection.isTerminated { finish() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        if let outer, !outerClosing {
            outerClosing = true
            outer.close(promise: nil)
        }
        onTerminated?(self)
    }
}

/// The session's end of the socketpair.
final class KCPStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let session: KCPSession

    init(session: KCPSession) { self.session = session }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.streamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.pump()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { session.streamInputEnded() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.streamInputEnded()
        session.streamClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
