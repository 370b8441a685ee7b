import NIOCore
import NIOEmbedded
import XCTest
@testable import Shared
@testable import Worker

/// Stands in for the protocol handlers behind an inbound transport's handlers (or a client
/// transport's): records what reaches it and can answer. One type for every transport test.
final class StreamRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var bytes: [UInt8] = []
    var activations = 0
    var deactivations = 0
    var inputClosed = false
    /// Who the pipeline said the client was when the first bytes arrived (PROXY protocol).
    var clientAtFirstRead: NIOCore.SocketAddress?
    /// Its place in the pipeline: what the protocol handler would write and close with.
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }
    func channelActive(context: ChannelHandlerContext) { activations += 1 }
    func channelInactive(context: ChannelHandlerContext) { deactivations += 1 }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        if bytes.isEmpty { clientAtFirstRead = context.channel.clientAddress }
        bytes += b.readBytes(length: b.readableBytes) ?? []
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { inputClosed = true }
    }

    /// Writes `text` toward the peer, as the protocol handler would.
    func answer(_ text: String) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
    }
}

extension XCTestCase {
    /// An accepted connection as the worker sets it up: `transport`'s handlers, then a recorder in the
    /// protocol's place, connected from `peer`. Finished at teardown: an open EmbeddedChannel and its
    /// pipeline keep each other, and every handler, alive until the process exits (LeakSanitizer).
    func makeInboundPipeline(_ transport: InboundTransport, peer: NIOCore.SocketAddress? = nil,
                             claimSource: @escaping (NIOCore.SocketAddress?) -> Bool = { _ in true }) throws
        -> (EmbeddedChannel, StreamRecorder) {
        let channel = EmbeddedChannel()
        addTeardownBlock { _ = try? channel.finish(acceptAlreadyClosed: true) }
        let recorder = StreamRecorder()
        try transport.configure(channel, claimSource: claimSource) { channel in try channel.pipeline.syncOperations.addHandler(recorder) }.wait()
        try channel.connect(to: peer ?? SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, recorder)
    }

    /// Writes inbound bytes and runs the loop: handlers that leave the pipeline hand over the bytes
    /// they hold in a task of their own (as ByteToMessageHandler's removal does on a real loop).
    func feed(_ channel: EmbeddedChannel, _ bytes: ArraySlice<UInt8>) throws {
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        channel.embeddedEventLoop.run()
    }
}
