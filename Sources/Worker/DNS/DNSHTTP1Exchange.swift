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
    let outcome: DNSChannelQuestion
    private var answer = DNSHTTPSAnswer()

    init(question: DNSQuestion, authority: String, path: String, outcome: DNSChannelQuestion) {
        self.question = question
        self.authority = authority
        self.path = path
        self.outcome = outcome
    }

    /// TLS is up: send the request.
    func send(on channel: Channel) {
        let query = question.query(id: 0)
        let headers = HTTPHeaders([
            ("Host", authority), ("Content-Type", "application/dns-message"), ("Accept", "application/dns-message"),
            ("Content-Length", "\(query.count)"), ("Connection", "close"),
        ])
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: query))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !outcome.done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status != .ok { outcome.finish(.failure(DNSLookupError.unreachable("HTTP status \(head.status.code)"))) }
        case .body(var bytes):
            if !answer.append(&bytes) { outcome.finish(.failure(DNSLookupError.malformed)) }
        case .end:
            outcome.finish(answer.reply(to: question))
        }
    }

    /// Closed before the whole answer.
    func channelInactive(context: ChannelHandlerContext) { outcome.connectionClosed() }

    func errorCaught(context: ChannelHandlerContext, error: Error) { outcome.connectionFailed(error) }
}
