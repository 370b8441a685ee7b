import NIOCore
import NIOPosix
import Shared

/// One question asked of one server over UDP (RFC 1035 §4.2.1), from a socket of its own: the kernel
/// picks a random source port per socket and the query id is random, so a blind spoofer has to guess
/// both (RFC 5452 §9.2). A datagram is accepted only from the server's address and port, with one of
/// the ids sent and the question echoed; anything else is dropped and the wait goes on. No answer
/// within `attemptTimeout` sends the query once more (with a new id; a late answer to the first
/// still counts), then the exchange fails with `DNSLookupError.timeout`.
final class DNSUDPExchange: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    static let attemptTimeout = TimeAmount.seconds(2)
    static let attempts = 2

    private let server: NIOCore.SocketAddress
    private let question: DNSQuestion
    private let promise: EventLoopPromise<DNSReply>
    private var ids: [UInt16] = []
    private var channel: Channel?
    private var timer: Scheduled<Void>?
    private var done = false

    /// The reply (a response, or `truncated`: ask again over TCP).
    static func ask(_ question: DNSQuestion, server: NIOCore.SocketAddress, on loop: EventLoop) -> EventLoopFuture<DNSReply> {
        let exchange = DNSUDPExchange(server: server, question: question, promise: loop.makePromise())
        DatagramBootstrap(group: loop)
            .readingWholeDatagrams()
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(exchange) }
            }
            .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
            .whenComplete { result in
                switch result {
                case .success(let channel): exchange.start(channel)
                case .failure(let error): exchange.finish(.failure(error))
                }
            }
        return exchange.promise.futureResult
    }

    private init(server: NIOCore.SocketAddress, question: DNSQuestion, promise: EventLoopPromise<DNSReply>) {
        self.server = server
        self.question = question
        self.promise = promise
    }

    private func start(_ channel: Channel) {
        self.channel = channel
        if done { channel.close(promise: nil); return }
        send()
    }

    private func send() {
        guard let channel, !done else { return }
        let id = UInt16.random(in: .min ... .max)
        ids.append(id)
        let query = channel.allocator.buffer(bytes: question.query(id: id))
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: server, data: query), promise: nil)
        timer = channel.eventLoop.scheduleTask(in: Self.attemptTimeout) { [self] in
            if ids.count < Self.attempts { send() } else { finish(.failure(DNSLookupError.timeout)) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == server,
              let reply = try? DNSResponseParser.parse(envelope.data, question: question) else { return }
        switch reply {
        case .response(let response) where ids.contains(response.id): finish(.success(reply))
        case .truncated(let id) where ids.contains(id): finish(.success(reply))
        default: return  // another id: forged, or a stale answer to a query this socket never sent
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP port unreachable surfaces as ECONNREFUSED on the next read: the server is not there.
        finish(.failure(DNSLookupError.unreachable("\(error)")))
    }

    private func finish(_ result: Result<DNSReply, Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        channel?.close(promise: nil)
        promise.completeWith(result)
    }
}
