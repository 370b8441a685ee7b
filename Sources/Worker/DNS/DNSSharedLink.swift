import NIOCore
import Shared

/// Routed UDP queries to one server through one outbound share one UDP link, as V2Ray's DNS client
/// shares one dispatcher link per server: through a vmess proxy that is one proxied UDP request for
/// every question instead of a connection (and handshake) each. Replies are told apart by id: each
/// question has its own ids (a new one per attempt; a late answer to the first still counts), never
/// two waiting questions the same, and a reply must echo its question. The link closes after
/// `idleTimeout` with nothing waiting, or when it fails (every waiting question then fails, and the
/// next one opens a new link).
///
/// Bounds: the questions waiting are the resolver's in flight (at most `DNSResolver.maximumInFlight`),
/// two ids each.
final class DNSSharedLink: DownstreamSink {
    static let idleTimeout = TimeAmount.seconds(30)

    private final class Waiter {
        let question: DNSQuestion
        let promise: EventLoopPromise<DNSReply>
        var ids: [UInt16] = []
        var timer: Scheduled<Void>?
        init(question: DNSQuestion, promise: EventLoopPromise<DNSReply>) {
            self.question = question
            self.promise = promise
        }
    }

    private let server: Destination
    private let loop: EventLoop
    private let onClose: () -> Void
    private var link: UpstreamLink?
    private var waiting: [UInt16: Waiter] = [:]
    private var idle: Scheduled<Void>?

    /// `onClose`: the owner forgets this link (it is not reused once closed).
    init(server: Destination, through outbound: Outbound, loop: EventLoop, onClose: @escaping () -> Void) {
        self.server = server
        self.loop = loop
        self.onClose = onClose
        link = outbound.open(server, sink: self, loop: loop, level: LevelPolicy())
    }

    var isOpen: Bool { link != nil }

    func ask(_ question: DNSQuestion) -> EventLoopFuture<DNSReply> {
        let waiter = Waiter(question: question, promise: loop.makePromise())
        idle?.cancel()
        idle = nil
        send(waiter)
        return waiter.promise.futureResult
    }

    private func send(_ waiter: Waiter) {
        guard let link else { return fail(waiter, DNSLookupError.unreachable("the link closed")) }
        var id = UInt16.random(in: .min ... .max)
        while waiting[id] != nil { id = UInt16.random(in: .min ... .max) }
        waiter.ids.append(id)
        waiting[id] = waiter
        link.writeDatagram(ByteBuffer(bytes: waiter.question.query(id: id)), to: server)
        link.flush()
        waiter.timer = loop.scheduleTask(in: DNSUDPExchange.attemptTimeout) { [self] in
            if waiter.ids.count < DNSUDPExchange.attempts { send(waiter) } else { fail(waiter, DNSLookupError.timeout) }
        }
    }

    private func complete(_ waiter: Waiter, _ result: Result<DNSReply, Error>) {
        waiter.timer?.cancel()
        for id in waiter.ids where waiting[id] === waiter { waiting[id] = nil }
        waiter.promise.completeWith(result)
        if waiting.isEmpty, link != nil, idle == nil {
            idle = loop.scheduleTask(in: Self.idleTimeout) { [self] in close() }
        }
    }

    private func fail(_ waiter: Waiter, _ error: Error) { complete(waiter, .failure(error)) }

    /// Ends the link; questions still waiting fail.
    func close() {
        guard let link else { return }
        self.link = nil
        idle?.cancel()
        idle = nil
        link.close()
        onClose()
        var seen = Set<ObjectIdentifier>()
        for waiter in waiting.values where seen.insert(ObjectIdentifier(waiter)).inserted {
            fail(waiter, DNSLookupError.unreachable("the link closed"))
        }
    }

    // MARK: DownstreamSink

    func downstreamDatagram(_ buffer: ByteBuffer, source: Destination) {
        // Any source, as in DNSLinkExchange: what a link reports as the source depends on the outbound.
        guard let id = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self), let waiter = waiting[id],
              let reply = try? DNSResponseParser.parse(buffer, question: waiter.question) else { return }
        complete(waiter, .success(reply))
    }

    func downstream(_ buffer: inout ByteBuffer) {}
    func flushDownstream() {}
    func downstreamFinished(error: Bool) { close() }
    var downstreamWritable: Bool { true }
    func upstreamWritabilityChanged() {}
}
