import NIOCore
import Shared

/// One question on one HTTP/2 stream to a DNS over HTTPS server (DNSHTTPSClient): the DNS message
/// as the request body (then END_STREAM), the response body read to its end and parsed. The body is
/// bounded by the largest DNS message (65,535 bytes): a longer one fails the question, it is never
/// cut and parsed. A status other than 200 ends the stream before any body (H2StreamHandler).
final class DNSHTTPSExchange: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    static let maximumMessage = 65_535

    private let question: DNSQuestion
    let promise: EventLoopPromise<DNSReply>
    private var received: ByteBuffer?
    private var channel: Channel?
    private var done = false

    init(question: DNSQuestion, promise: EventLoopPromise<DNSReply>) {
        self.question = question
        self.promise = promise
    }

    /// The stream is open: send the question and end our side.
    func start(_ channel: Channel) {
        self.channel = channel
        if done { channel.close(promise: nil); return }
        channel.write(ByteBuffer(bytes: question.query(id: 0)), promise: nil)
        channel.close(mode: .output, promise: nil)
        channel.flush()
    }

    func fail(_ error: Error) {
        finish(.failure(error))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var bytes = unwrapInboundIn(data)
        guard (received?.readableBytes ?? 0) + bytes.readableBytes <= Self.maximumMessage else {
            return finish(.failure(DNSLookupError.malformed))
        }
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event, !done else {
            return context.fireUserInboundEventTriggered(event)
        }
        guard let message = received, message.readableBytes > 0 else { return finish(.failure(DNSLookupError.malformed)) }
        switch Result(catching: { try DNSResponseParser.parse(message, question: question) }) {
        case .success(.response(let response)) where response.id == 0: finish(.success(.response(response)))
        case .success: finish(.failure(DNSLookupError.malformed))  // truncated (nothing to retry over), or another id
        case .failure(let error): finish(.failure(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(DNSLookupError.malformed))  // reset, refused (not 200) or closed before the whole answer
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failure(DNSLookupError.unreachable("\(error)")))
    }

    private func finish(_ result: Result<DNSReply, Error>) {
        guard !done else { return }
        done = true
        received = nil
        channel?.close(promise: nil)
        promise.completeWith(result)
    }
}
