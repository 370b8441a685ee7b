import NIOCore
import NIOHTTP1
import Shared

/// One question to a DNS over HTTPS server that speaks HTTP/1.1 only (it chose http/1.1 by ALPN),
/// on a connection of its own: `POST` with `Content-Length` and `Connection: close`, the response
/// read to its end (DNSHTTPSAnswer), anything but 200 refused. One TLS handshake per question, so
/// such a server costs more than an HTTP/2 one; the resolver's cache keeps repeats off the wire.
final class DNSHTTP1Exchange: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let question: DNSQuestion
    private let authority: String
    private let path: String
    let promise: EventLoopPromise<DNSReply>
    private var answer = DNSHTTPSAnswer()
    private var channel: Channel?
    private var done = false

    init(question: DNSQuestion, authority: String, path: String, promise: EventLoopPromise<DNSReply>) {
        self.question = question
        self.authority = authority
        self.path = path
        self.promise = promise
    }

    /// TLS is up: send the request.
    func start(_ channel: Channel) {
        self.channel = channel
        if done { channel.close(promise: nil); return }
        let query = question.query(id: 0)
        let headers = HTTPHeaders([
            ("Host", authority), ("Content-Type", "application/dns-message"), ("Accept", "application/dns-message"),
            ("Content-Length", "\(query.count)"), ("Connection", "close"),
        ])
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: query))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func fail(_ error: Error) {
        finish(.failure(error))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard head.status == .ok else { return finish(.failure(DNSLookupError.unreachable("HTTP status \(head.status.code)"))) }
        case .body(var bytes):
            if !answer.append(&bytes) { finish(.failure(DNSLookupError.malformed)) }
        case .end:
            finish(answer.reply(to: question))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(DNSLookupError.malformed))  // closed before the whole answer
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
