import NIOCore
import NIOPosix
import Shared

/// The client side of a stream transport (`streamSettings` of an outbound): connects to a server
/// and hands back a channel whose pipeline carries the raw byte stream as `ByteBuffer`s once the
/// transport handshake (TLS, WebSocket upgrade, httpupgrade) is complete.
struct StreamDialer {
    let stream: StreamSettings

    init(stream: StreamSettings) {
        self.stream = stream
    }

    /// `initializer` adds the protocol handlers (e.g. the VMess client) after the transport's own.
    func connect(host: String, port: Int, on loop: EventLoop, timeout: TimeAmount,
                 initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .connectTimeout(timeout)
            .channelInitializer(initializer)
            .connect(host: host, port: port)
    }
}
