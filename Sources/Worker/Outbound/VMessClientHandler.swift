import Logging
import NIOCore
import Shared

/// The server-facing end of one VMess client connection: reads the response header and body and
/// hands the plaintext to the inbound's sink; holds the server's reads while the local client cannot
/// take more. The request direction is written by `VMessClientLink`.
///
///   local client ──▶ inbound (sink) ──▶ VMessClientLink ──VMess──▶ server
///                ◀──                ◀── VMessClientHandler ◀──────
final class VMessClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    weak var sink: DownstreamSink?
    /// Told of a switch-account command in the response header (dynamic port).
    var onSwitchAccount: ((SwitchAccountCommand) -> Void)?
    private let destination: Destination
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var reader: VMessResponseReader?
    private var decoder: BodyDecoder?
    private var request: VMessClientRequest?
    /// Part of the response header that arrived without the rest (≤ 275 bytes).
    private var partialHeader: ByteBuffer?
    let hold = ReadHold()
    private var finished = false

    init(sink: DownstreamSink, destination: Destination, logger: Logger) {
        self.sink = sink
        self.destination = destination
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Called when the request header goes out: from now on the server may answer.
    func expect(_ request: VMessClientRequest) throws {
        self.request = request
        reader = try VMessResponseReader(request: request)
    }

    /// The response body's cipher contexts, while the connection is quiet.
    func releaseCipherContexts() { decoder?.releaseCipherContexts() }

    // MARK: response

    private var sinkOpen: Bool { sink?.downstreamWritable ?? true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        var buffer = unwrapInboundIn(data)
        switch hold.admit(buffer, open: sinkOpen) {
        case .pass: take(&buffer)
        case .kept: break
        case .refused: fail("response bytes kept after the server's FIN exceed the worker's budget")
        }
    }

    /// Response bytes from the server, in order.
    private func take(_ buffer: inout ByteBuffer) {
        guard !finished else { return }
        guard var reader, let request else {
            // Nothing was asked yet: a server that talks first is not a VMess server.
            return fail("server sent \(buffer.readableBytes) bytes before the request")
        }
        if decoder == nil {
            if var partial = partialHeader {
                partialHeader = nil
                partial.writeBuffer(&buffer)
                buffer = partial
            }
            let complete: Bool
            do {
                complete = try reader.feed(&buffer)
            } catch {
                return fail("\(error)")
            }
            self.reader = reader
            guard complete else {
                if buffer.readableBytes > 0 { partialHeader = buffer }
                return
            }
            if let command = reader.switchAccount { onSwitchAccount?(command) }
            do {
                let parameters = try BodyParameters.response(request.header, keys: request.responseKeys)
                decoder = try BodyDecoder(parameters, continuing: parameters.cipher == .legacy ? reader.legacyStream : nil)
            } catch {
                return fail("response body setup: \(error)")
            }
        }
        guard let decoder, buffer.readableBytes > 0 else { return }
        do {
            let ended = try decoder.decode(&buffer) { payload in
                guard let sink else { return }
                if decoder.parameters.packet {
                    sink.downstreamDatagram(payload, source: destination)
                } else {
                    var p = payload
                    sink.downstream(&p)
                }
            }
            if ended { finish(error: false) }
        } catch {
            fail("response body: \(error)")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { sink?.flushDownstream() }

    private func fail(_ reason: String) {
        logger.debug("vmess outbound: \(reason)", metadata: ["dest": "\(destination)"])
        hold.discard()
        finish(error: true)
        context?.close(promise: nil)
    }

    /// Whether an EOF from the server now is the normal end of the response: after the end-of-stream
    /// chunk, or anywhere in a raw body (zero), which has no end marker. A chunked body cut off
    /// without its end marker means the far side failed: the reference server then flushes the
    /// response header alone and closes (an unreachable target looks exactly like that), so it is
    /// reported as an error, which lets the HTTP inbound answer 502.
    private var endedNormally: Bool {
        guard let decoder else { return false }
        let p = decoder.parameters
        let chunked = p.options.contains(.chunkStream) || p.cipher == .aes128GCM || p.cipher == .chacha20Poly1305
        return decoder.finished || !chunked
    }

    /// The server's side is over.
    private func finish(error: Bool) {
        guard !finished else { return }
        finished = true
        sink?.downstreamFinished(error: error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            if hold.admitEnd() { finish(error: !endedNormally) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if hold.admitEnd() { finish(error: !endedNormally) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail("connection: \(error)")
    }

    // MARK: backpressure

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    /// The server is read only while the local client can take more.
    func read(context: ChannelHandlerContext) {
        hold.read(context: context, open: sinkOpen)
    }

    /// The local client can take more: what NIO read unasked at the server's EOF first, then reads.
    func resumeReads() {
        let delivered = hold.resume(context: context, open: { sinkOpen }, deliver: { take(&$0) },
                                    end: { finish(error: !endedNormally) })
        if delivered { sink?.flushDownstream() }
    }
}
