import Logging
import NIOCore
import Shared

/// First in the pipeline of an inbound with `acceptProxyProtocol`: reads the PROXY protocol header
/// (v1 or v2, ProxyProtocolHeader) that the balancer in front sends before the client's bytes, and
/// holds the client address it carries for the handlers after it (`Channel.clientAddress`).
///
/// The header never travels on; the bytes after it, in the same read or later ones, do, unchanged.
/// Bounded: at most `maxLength` bytes are buffered (the parser refuses longer headers) and the whole
/// header must arrive within `deadline`; a bad or late header closes this connection only.
/// The handlers after it see `channelActive` only once the header is read, so that nothing acts on a
/// connection before its client is known (dokodemo-door dials and routes at activation), and see
/// neither activation nor `channelInactive` of a connection closed for its header.
/// After the header it stays in place as a pass-through, which costs one call per read and keeps the
/// address where `clientAddress` finds it.
final class ProxyProtocolHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// HAProxy sends the header with its connect; a peer that has not sent one in this time is not a
    /// balancer. As long as nginx's `proxy_protocol_timeout` default.
    static let deadline = TimeAmount.seconds(5)

    /// Set once the header is read: the carried client address (nil for LOCAL/UNKNOWN: the real peer).
    private(set) var clientAddress: NIOCore.SocketAddress?
    private var done = false
    /// The channel went active while the header was still awaited; told on once it is read.
    private var activePending = false
    private var activeFired = false
    private var cumulation: ByteBuffer?
    private var timeout: Scheduled<Void>?
    private let maxLength: Int
    private let deadline: TimeAmount
    /// Asked once, with the address the header carried (nil: the peer is the client); false closes the
    /// connection (the per-source limit, which at accept time could only see the balancer's address).
    private let admit: (NIOCore.SocketAddress?) -> Bool
    /// Told of every connection closed for its header: the counter name.
    private let rejected: (String) -> Void
    private let logger: Logger

    init(maxLength: Int = ProxyProtocolHeader.defaultMaxLength, deadline: TimeAmount = ProxyProtocolHandler.deadline,
         logger: Logger, admit: @escaping (NIOCore.SocketAddress?) -> Bool = { _ in true },
         rejected: @escaping (String) -> Void = { _ in }) {
        self.maxLength = maxLength
        self.deadline = deadline
        self.logger = logger
        self.admit = admit
        self.rejected = rejected
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activePending = true }  // added late: no channelActive will come
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: deadline) { [weak self] in
            guard let self, !self.done else { return }
            self.refuse(context: loopBound.value, counter: "proxy_timeout", reason: "no PROXY header in time")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        activePending = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        if activeFired { context.fireChannelInactive() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if activeFired { context.fireChannelReadComplete() }
    }

    /// A half-close before the header is complete: no header will come, and the handlers after this
    /// one have not seen the connection, so it just ends.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if activeFired { return context.fireUserInboundEventTriggered(event) }
        if !done, case ChannelEvent.inputClosed = event {
            done = true
            cumulation = nil
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else {
            if activeFired { context.fireChannelRead(data) }
            return
        }
        var buffer = unwrapInboundIn(data)
        if var c = cumulation {
            cumulation = nil
            c.writeBuffer(&buffer)
            buffer = c
        }
        let result = buffer.withUnsafeReadableBytes { ProxyProtocolHeader.parse($0, maxLength: maxLength) }
        switch result {
        case .needMore:
            cumulation = buffer  // the parser keeps this below maxLength
        case .invalid(let error):
            refuse(context: context, counter: error.counterName, reason: error.description)
        case .parsed(let origin, let consumed):
            done = true
            timeout?.cancel()
            timeout = nil
            if case .client(let address) = origin { clientAddress = address }
            guard admit(clientAddress) else {
                logger.debug("connection refused: source limit reached", metadata: ["peer": "\(clientAddress?.description ?? "?")"])
                context.close(promise: nil)
                return
            }
            buffer.moveReaderIndex(forwardBy: consumed)
            if activePending {
                activeFired = true
                context.fireChannelActive()
            }
            // The protocol handler may have closed the connection at activation.
            if buffer.readableBytes > 0, context.channel.isActive { context.fireChannelRead(wrapInboundOut(buffer)) }
        }
    }

    private func refuse(context: ChannelHandlerContext, counter: String, reason: String) {
        done = true
        cumulation = nil
        rejected(counter)
        logger.debug("bad PROXY protocol header", metadata: ["reason": "\(reason)", "peer": "\(context.remoteAddress?.description ?? "?")"])
        context.close(promise: nil)
    }
}

extension Channel {
    /// Who the client is, for the access log, routing `source` rules, the per-source limit and the
    /// AuthID matcher: the address a PROXY protocol header carried, the UDP address of an mKCP
    /// session (whose stream is a local socketpair), else the peer's. Every such use goes
    /// through here. On the channel's event loop.
    var clientAddress: NIOCore.SocketAddress? {
        // An HTTP/2 stream (gRPC, h2 transports): its connection knows.
        if let parent, (try? pipeline.syncOperations.handler(type: H2StreamHandler.self)) != nil {
            return parent.clientAddress
        }
        if let handler = try? pipeline.syncOperations.handler(type: ProxyProtocolHandler.self),
           let carried = handler.clientAddress {
            return carried
        }
        if let kcp = try? pipeline.syncOperations.handler(type: KCPPeerAddress.self) {
            return kcp.address
        }
        return remoteAddress
    }
}
