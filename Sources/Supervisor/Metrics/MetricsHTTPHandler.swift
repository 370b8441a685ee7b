// One HTTP/1.1 connection to the metrics endpoint: `GET /metrics` (or HEAD) answers the exposition
// text, any other path 404, any other method on /metrics 405. NIOHTTP1 parses (bounded heads; its
// pipelining handler orders answers); this handler bounds what it accepts of a body and closes an
// idle connection (IdleStateHandler's event).

import NIOCore
import NIOHTTP1

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// A scrape has no body; a little is tolerated and discarded, more closes the connection.
    static let maximumBody = 4096

    private let render: @Sendable () async -> [UInt8]?
    private let deadline: RequestDeadline?
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    /// Answered "too large" and closing: the rest of the request is ignored.
    private var closing = false

    init(render: @escaping @Sendable () async -> [UInt8]?, deadline: RequestDeadline? = nil) {
        self.render = render
        self.deadline = deadline
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let chunk):
            bodyBytes &+= chunk.readableBytes
            if bodyBytes > Self.maximumBody {
                head = nil
                closing = true
                respond(context, status: .payloadTooLarge, keepAlive: false, body: Array("request body too large\n".utf8))
            }
        case .end:
            deadline?.requestComplete()
            guard let h = head else { return }
            head = nil
            route(h, context: context)
        }
    }

    private func route(_ h: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard path == "/metrics" else {
            return respond(context, status: .notFound, keepAlive: h.isKeepAlive, body: Array("not found; try /metrics\n".utf8))
        }
        guard h.method == .GET || h.method == .HEAD else {
            return respond(context, status: .methodNotAllowed, keepAlive: h.isKeepAlive, body: [], allow: true)
        }
        let render = self.render
        let promise = context.eventLoop.makePromise(of: [UInt8]?.self)
        promise.completeWithTask { await render() }
        promise.futureResult.whenSuccess { [self] text in
            guard context.channel.isActive else { return }
            guard let text else {
                return respond(context, status: .serviceUnavailable, keepAlive: false, body: Array("vmessd is stopping\n".utf8))
            }
            respond(context, status: .ok, keepAlive: h.isKeepAlive, body: text, contentType: MetricsExporter.contentType,
                    omitBody: h.method == .HEAD)
        }
    }

    private func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, keepAlive: Bool, body: [UInt8],
                         contentType: String = "text/plain; charset=utf-8", allow: Bool = false, omitBody: Bool = false) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if allow { headers.add(name: "Allow", value: "GET, HEAD") }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !omitBody && !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
