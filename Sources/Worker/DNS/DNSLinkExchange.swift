import NIOCore
import Shared

/// One question asked of one server through an outbound link, for queries that routing sends
/// through a proxy (V2Ray routes its DNS client's queries like any request): over UDP as datagrams of
/// a UDP link (2 s per attempt, one retry with a new id, a late answer to the first still counts),
/// or over TCP as one length-prefixed message on a stream link (4 s). Replies are accepted with a sent
/// id and the question echoed, as in DNSUDPExchange; the link is closed when the exchange ends.
final class DNSLinkExchange: DownstreamSink {
    private let question: DNSQuestion
    private let server: Destination
    private let promise: EventLoopPromise<DNSReply>
    private let loop: EventLoop
    private var link: UpstreamLink?
    private var ids: [UInt16] = []
    private var framer = DNSStreamFramer()
    private var timer: Scheduled<Void>?
    private var done = false

    /// `server.network` says which framing: .udp (datagrams) or .tcp (a stream).
    static func ask(_ question: DNSQuestion, server: Destination, through outbound: Outbound, on loop: EventLoop) -> EventLoopFuture<DNSReply> {
        let exchange = DNSLinkExchange(question: question, server: server, loop: loop)
        exchange.start(outbound)
        return exchange.promise.futureResult
    }

    private init(question: DNSQuestion, server: Destination, loop: EventLoop) {
        self.question = question
        self.server = server
        self.loop = loop
        promise = loop.makePromise()
    }

    private func start(_ outbound: Outbound) {
        let link = outbound.open(server, sink: self, loop: loop, level: LevelPolicy())
        self.link = link
        if server.network == .tcp {
            let id = UInt16.random(in: .min ... .max)
            ids.append(id)
            link.write(DNSStreamFramer.frame(ByteBuffer(bytes: question.query(id: id)), allocator: ByteBufferAllocator()))
            link.flush()
            timer = loop.scheduleTask(in: DNSTCPExchange.timeout) { [self] in finish(.failure(DNSLookupError.timeout)) }
        } else {
            send()
        }
    }

    private func send() {
        guard let link, !done else { return }
        let id = UInt16.random(in: .min ... .max)
        ids.append(id)
        link.writeDatagram(ByteBuffer(bytes: question.query(id: id)), to: server)
        link.flush()
        timer = loop.scheduleTask(in: DNSUDPExchange.attemptTimeout) { [self] in
            if ids.count < DNSUDPExchange.attempts { send() } else { finish(.failure(DNSLookupError.timeout)) }
        }
    }

    private func receive(_ message: ByteBuffer) {
        guard let reply = try? DNSResponseParser.parse(message, question: question) else { return }
        switch reply {
        case .response(let response) where ids.contains(response.id): finish(.success(reply))
        case .truncated(let id) where ids.contains(id):
            // Over a stream a cut answer is not worth asking again for.
            finish(server.network == .tcp ? .failure(DNSLookupError.malformed) : .success(reply))
        default: return
        }
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
        guard server.network == .tcp, !done else { return }
        framer.append(&buffer)
        if let message = framer.next() { receive(message) }
    }

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
        // Any source: the link is this exchange's own, and what it reports as the source depends on
        // the outbound (a freedom `redirect` answers from elsewhere; V2Ray matches by id alone too).
        guard server.network == .udp, !done else { return }
        receive(buffer)
    }

    func flushDownstream() {}

    func downstreamFinished(error: Bool) {
        finish(.failure(error ? DNSLookupError.unreachable("the link failed") : DNSLookupError.malformed))
    }

    var downstreamWritable: Bool { true }

    func upstreamWritabilityChanged() {}
}
