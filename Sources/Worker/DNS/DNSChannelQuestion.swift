import NIOCore
import Shared

/// The life of one question on a connection (or HTTP/2 stream) of its own, shared by the TCP and DNS
/// over HTTPS exchanges: one deadline for the whole exchange, connection set-up included; the
/// question ends once (an answer, a failure or the deadline), and its connection is closed then,
/// whether it was already up or comes up later.
final class DNSChannelQuestion {
    let promise: EventLoopPromise<DNSReply>
    private var channel: Channel?
    private var timer: Scheduled<Void>?
    private(set) var done = false

    init(on loop: EventLoop, deadline: NIODeadline) {
        promise = loop.makePromise()
        timer = loop.scheduleTask(deadline: deadline) { self.finish(.failure(DNSLookupError.timeout)) }
    }

    var futureResult: EventLoopFuture<DNSReply> { promise.futureResult }

    /// Waits for the connection: once it is up, `send` writes the question on it (unless the
    /// question has ended meanwhile). A failed connection fails the question (`unreachable`; a
    /// server that chose another protocol than h2 as is, for the DoH client to retry over HTTP/1.1).
    func follow(_ connecting: EventLoopFuture<Channel>, send: @escaping (Channel) -> Void) {
        connecting.whenComplete { result in
            switch result {
            case .success(let channel):
                self.channel = channel
                if self.done { channel.close(promise: nil) } else { send(channel) }
            case .failure(let error as TLSHandshakeWatcher.ProtocolMismatch):
                self.finish(.failure(error))
            case .failure(let error):
                self.finish(.failure(DNSLookupError.unreachable("\(error)")))
            }
        }
    }

    /// The connection closed before an answer was whole.
    func connectionClosed() { finish(.failure(DNSLookupError.malformed)) }

    func connectionFailed(_ error: Error) { finish(.failure(DNSLookupError.unreachable("\(error)"))) }

    func finish(_ result: Result<DNSReply, Error>) {
        guard !done else { return }
        done = true
        timer?.cancel()
        channel?.close(promise: nil)
        promise.completeWith(result)
    }
}
