import NIOCore
import NIOPosix
import Shared

/// One question asked of one server over TCP (RFC 1035 §4.2.2, RFC 7766): after a UDP answer came
/// back truncated. The message is prefixed by its 16-bit length both ways; the first whole answer
/// (at most 65,535 bytes, so the buffer is bounded) is parsed, checked against the id and the
/// question, and the connection closed. The whole exchange, connect included, has `timeout`.
final class DNSTCPExchange: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    static let timeout = TimeAmount.seconds(4)

    private let question: DNSQuestion
    private let id = UInt16.random(in: .min ... .max)
    private let promise: EventLoopPromise<DNSReply>
    private var received: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var channel: Channel?
    private var done = false

    static func ask(_ question: DNSQuestion, server: NIOCore.SocketAddress, on loop: EventLoop) -> EventLoopFuture<DNSReply> {
        let exchange = DNSTCPExchange(question: question, promise: loop.makePromise())
        exchange.timer = loop.scheduleTask(in: timeout) { exchange.finish(.failure(DNSLookupError.timeout)) }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(exchange) }
            }
            .connect(to: server)
            .whenComplete { result in
                switch result {
                case .success(let channel): exchange.start(channel)
                case .failure(let error): exchange.finish(.failure(DNSLookupError.unreachable("\(error)")))
                }
            }
        return exchange.promise.futureResult
    }

    private init(question: DNSQuestion, promise: EventLoopPromise<DNSReply>) {
        self.question = question
        self.promise = promise
    }

    private func start(_ channel: Channel) {
        self.channel = channel
        if done { channel.close(promise: nil); return }
        let query = question.query(id: id)
        var buffer = channel.allocator.buffer(capacity: 2 + query.count)
        buffer.writeInteger(UInt16(query.count))
        buffer.writeBytes(query)
        channel.writeAndFlush(buffer, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        guard var buffer = received, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return }
        guard buffer.readableBytes >= 2 + Int(length) else { return }  // at most 65,537 bytes are ever held
        buffer.moveReaderIndex(forwardBy: 2)
        guard let message = buffer.readSlice(length: Int(length)) else { return }
        switch Result(catching: { try DNSResponseParser.parse(message, question: question) }) {
        case .success(.response(let response)) where response.id == id: finish(.success(.response(response)))
        case .success(.truncated): finish(.failure(DNSLookupError.malformed))  // TC over TCP: nothing more to ask
        case .success: finish(.failure(DNSLookupError.malformed))  // wrong id on our own connection
        case .failure(let error): finish(.failure(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(DNSLookupError.malformed))  // closed before a whole answer
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failure(DNSLookupError.unreachable("\(error)")))
    }

    private func finish(_ result: Result<DNSReply, Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        received = nil
        channel?.close(promise: nil)
        promise.completeWith(result)
    }
}
