import NIOCore
import Shared

/// One question asked of one server over TCP through an outbound's stream link, for queries routing
/// sends through a proxy: a `tcp://` server, or the TCP retry after a truncated UDP answer (UDP
/// queries share a link, DNSSharedLink). One length-prefixed message each way (RFC 7766), 4 s in all;
/// the reply must carry the id sent and echo the question. The link is closed when the exchange ends.
final class DNSLinkExchange: DownstreamSink {
    private let question: DNSQuestion
    private let id = UInt16.random(in: .min ... .max)
    private let promise: EventLoopPromise<DNSReply>
    private let loop: EventLoop
    private var link: UpstreamLink?
    private var framer = DNSStreamFramer()
    private var timer: Scheduled<Void>?
    private var done = false

    /// `server.network` is .tcp.
    static func ask(_ question: DNSQuestion, server: Destination, through outbound: Outbound, on loop: EventLoop) -> EventLoopFuture<DNSReply> {
        let exchange = DNSLinkExchange(question: question, loop: loop)
        exchange.start(server, outbound)
        return exchange.promise.futureResult
    }

    private init(question: DNSQuestion, loop: EventLoop) {
        self.question = question
        self.loop = loop
        promise = loop.makePromise()
    }

    private func start(_ server: Destination, _ outbound: Outbound) {
        timer = loop.scheduleTask(in: DNSTCPExchange.timeout) { [self] in finish(.failure(DNSLookupError.timeout)) }
        let link = outbound.open(server, sink: self, loop: loop, level: LevelPolicy())
        guard !done else { return link.close() }
        self.link = link
        link.write(DNSStreamFramer.frame(ByteBuffer(bytes: question.query(id: id)), allocator: ByteBufferAllocator()))
        link.flush()
    }

    private func finish(_ result: Result<DNSReply, Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        link?.close()
        link = nil
        promise.completeWith(result)
    }

    // MARK: DownstreamSink

    func downstream(_ buffer: inout ByteBuffer) {
        guard !done else { return }
        framer.append(&buffer)
        guard let message = framer.next() else { return }
        switch Result(catching: { try DNSResponseParser.parse(message, question: question) }) {
        case .success(.response(let response)) where response.id == id: finish(.success(.response(response)))
        case .success: finish(.failure(DNSLookupError.malformed))  // truncated over TCP, or another id
        case .failure(let error): finish(.failure(error))
        }
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {}
    func flushDownstream() {}

    func downstreamFinished(error: Bool) {
        finish(.failure(error ? DNSLookupError.unreachable("the link failed") : DNSLookupError.malformed))
    }

    var downstreamWritable: Bool { true }
    func upstreamWritabilityChanged() {}
}
