import NIOCore

/// Client side of the tcp HTTP disguise (TCPHTTPHeader): the fake request head goes out in front of
/// the protocol's first write, and the server's response head is read off the front of what comes
/// back; the bytes behind it in the same read are passed on in the same event.
///
///   [TLS] → TCPHTTPHeaderClientHandler → protocol handlers      (removes itself once both heads are done)
///
/// Like V2Ray's client it does not judge the response (a disguised server may be configured to answer
/// 404 or 302); it only insists on an HTTP head of at most TCPHTTPHeader.maximumHead bytes, so that a
/// server without the disguise fails the connection instead of having its stream eaten.
final class TCPHTTPHeaderClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let header: TCPHTTPHeader
    private var requestSent = false
    private var responseRead = false
    private var failed = false
    private var pending: [UInt8] = []
    private var scanned = 0

    init(header: TCPHTTPHeader) {
        self.header = header
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !requestSent {
            requestSent = true
            var random = SystemRandomNumberGenerator()
            let head = header.requestHead(using: &random)
            context.write(wrapOutboundOut(context.channel.allocator.buffer(string: head)), promise: nil)
        }
        context.write(data, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        // Not in write(): leaving the pipeline there loses the flush that follows it.
        removeIfDone(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !responseRead else { return context.fireChannelRead(data) }
        guard !failed else { return }
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        do {
            guard let head = try HTTPHeadLines.parse(&pending, scanned: &scanned, limit: TCPHTTPHeader.maximumHead) else {
                return
            }
            guard head.startLine.hasPrefix("HTTP/") else {
                throw HTTPHeadLines.ParseError.malformed("the server's answer is not an HTTP response")
            }
        } catch {
            failed = true
            pending = []
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        responseRead = true
        let rest = pending
        pending = []
        if !rest.isEmpty { context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: rest))) }
        removeIfDone(context: context)
    }

    private func removeIfDone(context: ChannelHandlerContext) {
        guard requestSent, responseRead else { return }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
