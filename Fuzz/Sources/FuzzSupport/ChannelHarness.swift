import NIOCore
import NIOEmbedded

/// The handlers that hold a parser inside a NIO pipeline are driven the way the tests drive them: on
/// an EmbeddedChannel, one writeInbound per read, with a stand-in protocol handler at the end.
public enum ChannelHarness {
    /// A connected EmbeddedChannel (handlers see channelActive, as on an accepted socket).
    public static func connected(_ handlers: [ChannelHandler]) -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try! channel.pipeline.syncOperations.addHandlers(handlers)
        try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Feeds the reads; stops at the first error the pipeline raises (the channel then closes, as a
    /// real one would). Returns false when it stopped early.
    @discardableResult
    public static func feed(_ channel: EmbeddedChannel, _ pieces: [ArraySlice<UInt8>]) -> Bool {
        for piece in pieces {
            guard channel.isActive else { return false }
            do {
                try channel.writeInbound(channel.allocator.buffer(bytes: piece))
            } catch {
                return false
            }
        }
        return true
    }

    /// Everything the pipeline wrote towards the peer so far.
    public static func drainOutbound(_ channel: EmbeddedChannel) -> [UInt8] {
        var out: [UInt8] = []
        while let b = try? channel.readOutbound(as: ByteBuffer.self) { out += b.readableBytesView }
        return out
    }

    /// Closes the channel however it ended up; what is left over is not the fuzz target's concern.
    public static func finish(_ channel: EmbeddedChannel) {
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

/// Stands in for the protocol handler behind a transport: collects the stream it is handed.
public final class StreamCollector: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = ByteBuffer
    public var received: [UInt8] = []
    public init() {}
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
    }
}
