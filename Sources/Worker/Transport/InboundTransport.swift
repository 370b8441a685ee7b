import NIOCore
import Shared

/// The stream transport of an inbound (`streamSettings`): sets up whatever sits between the
/// accepted TCP connection and the protocol handler, so that the protocol handler always sees the
/// client's byte stream as plain `ByteBuffer`s (and writes plain `ByteBuffer`s back).
///
/// Raw TCP needs nothing. WebSocket, httpupgrade and TLS add their handlers here and call
/// `installProtocol` once the stream is ready (e.g. after the HTTP upgrade).
struct InboundTransport {
    let stream: StreamSettings

    init(stream: StreamSettings) throws {
        self.stream = stream
    }

    /// Called for every accepted connection, on its event loop.
    func configure(_ channel: Channel, installProtocol: @escaping (Channel) throws -> Void) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture { try installProtocol(channel) }
    }
}
