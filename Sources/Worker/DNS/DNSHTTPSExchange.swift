import NIOCore
import Shared

/// One question on one HTTP/2 stream to a DNS over HTTPS server (DNSHTTPSClient): the DNS message
/// as the request body (then END_STREAM), the response body read to its end (DNSHTTPSAnswer). A
/// status other than 200 ends the stream before any body (H2StreamHandler).
final class DNSHTTPSExchange: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let question: DNSQuestion
    let outcome: DNSChannelQuestion
    private var answer = DNSHTTPSAnswer()

    init(question: DNSQuestion, outcome: DNSChannelQuestion) {
        self.question = question
        self.outcome = outcome
    }

    /// The stream is open: send the question and end our side.
    func send(on channel: Channel) {
        channel.write(ByteBuffer(bytes: question.query(id: 0)), promise: nil)
        channel.close(mode: .output, promise: nil)
        channel.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !outcome.done else { return }
        var bytes = unwrapInboundIn(data)
        if !answer.append(&bytes) { outcome.finish(.failure(DNSLookupError.malformed)) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event else {
            return context.fireUserInboundEventTriggered(event)
        }
        outcome.finish(answer.reply(to: question))
    }

    /// Reset, refused (not 200) or closed before the whole answer.
    func channelInactive(context: ChannelHandlerContext) { outcome.connectionClosed() }

    func errorCaught(context: ChannelHandlerContext, error: Error) { outcome.connectionFailed(error) }
}
