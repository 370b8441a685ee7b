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
    private let outcome: DNSChannelQuestion
    private var received: ByteBuffer?

    static func ask(_ question: DNSQuestion, server: NIOCore.SocketAddress, on loop: EventLoop) -> EventLoopFuture<DNSReply> {
        let exchange = DNSTCPExchange(question: question, outcome: DNSChannelQuestion(on: loop, deadline: .now() + timeout))
        let connecting = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(exchange) }
            }
            .connect(to: server)
        exchange.outcome.follow(connecting) { channel in exchange.send(on: channel) }
        return exchange.outcome.futureResult
    }

    private init(question: DNSQuestion, outcome: DNSChannelQuestion) {
        self.question = question
        self.outcome = outcome
    }

    private func send(on channel: Channel) {
        let query = question.query(id: id)
        var buffer = channel.allocator.buffer(capacity: 2 + query.count)
        buffer.writeInteger(UInt16(query.count))
        buffer.writeBytes(query)
        channel.writeAndFlush(buffer, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !outcome.done else { return }
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
        received = nil
        switch Result(catching: { try DNSResponseParser.parse(message, question: question) }) {
        case .success(.response(let response)) where response.id == id: outcome.finish(.success(.response(response)))
        case .success(.truncated): outcome.finish(.failure(DNSLookupError.malformed))  // TC over TCP: nothing more to ask
        case .success: outcome.finish(.failure(DNSLookupError.malformed))  // wrong id on our own connection
        case .failure(let error): outcome.finish(.failure(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) { outcome.connectionClosed() }

    func errorCaught(context: ChannelHandlerContext, error: Error) { outcome.connectionFailed(error) }
}
