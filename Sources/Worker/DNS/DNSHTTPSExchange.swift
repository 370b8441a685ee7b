import NIOCore
import Shared

/// One question on one HTTP/2 stream to a DNS over HTTPS server (DNSHTTPSClient): the DNS message
/// as the request body (then END_STREAM), the response body read to its end (DNSHTTPSAnswer). A
/// status other than 200 ends the stream before any body (H2StreamHandler).
final class DNSHTTPSExchange: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let question: DNSQuestion
    let promise: EventLoopPromise<DNSReply>
    private var answer = DNSHTTPSAnswer()
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
        if !answer.append(&bytes) { finish(.failure(DNSLookupError.malformed)) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, case .inputClosed = event, !done else {
            return context.fireUserInboundEventTriggered(event)
        }
        finish(answer.reply(to: question))
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
        channel?.close(promise: nil)
        promise.completeWith(result)
    }
}
