import NIOCore
import NIOHTTP2

/// The HTTP/2 connections of one outbound's dialer (grpc, h2): as V2Ray's and Xray's clients do,
/// every VMess connection to the same server is a stream on one shared HTTP/2 connection, which saves
/// a TCP and TLS handshake per connection. A connection is replaced when it closes or refuses a
/// stream (after the server's GOAWAY), and closed once it has carried no stream for `idleTimeout`.
/// Event-loop confined: one per outbound per worker, used on the worker's single loop.
final class H2ConnectionPool: @unchecked Sendable {
    /// A stream count beyond this opens a second connection (the server's SETTINGS may allow fewer;
    /// NIO then queues the stream until one ends).
    static let maximumStreams = 100
    static let idleTimeout = TimeAmount.seconds(30)

    final class Connection {
        let parent: Channel
        let multiplexer: NIOHTTP2Handler.StreamMultiplexer
        var streams = 0
        var idleTimer: Scheduled<Void>?
        var usable = true

        init(parent: Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
            self.parent = parent
            self.multiplexer = multiplexer
        }
    }

    private var connections: [String: Connection] = [:]
    /// A connection being set up: later dials to the same server wait for it instead of opening more.
    private var pending: [String: EventLoopFuture<Connection>] = [:]

    /// A usable connection to `key` (host:port): the shared one, the one being set up, or a new one from `open`.
    func connection(_ key: String, on loop: EventLoop, open: () -> EventLoopFuture<Connection>) -> EventLoopFuture<Connection> {
        if let existing = connections[key], existing.usable, existing.parent.isActive, existing.streams < Self.maximumStreams {
            return loop.makeSucceededFuture(existing)
        }
        if let waiting = pending[key] { return waiting }
        let future = open()
        pending[key] = future
        future.whenComplete { [self] result in
            pending[key] = nil
            guard case .success(let connection) = result else { return }
            connections[key] = connection
            armIdleTimer(connection, key: key)
            connection.parent.closeFuture.whenComplete { [self] _ in
                connection.usable = false
                connection.idleTimer?.cancel()
                if connections[key] === connection { connections[key] = nil }
            }
        }
        return future
    }

    /// The connection refused a stream: dials from now on get a new one.
    func retire(_ connection: Connection, key: String) {
        connection.usable = false
        if connections[key] === connection { connections[key] = nil }
        if connection.streams == 0 { connection.parent.close(promise: nil) }
    }

    func streamOpened(on connection: Connection) {
        connection.streams += 1
        connection.idleTimer?.cancel()
        connection.idleTimer = nil
    }

    func streamClosed(on connection: Connection, key: String) {
        connection.streams -= 1
        guard connection.streams == 0 else { return }
        if connection.usable {
            armIdleTimer(connection, key: key)
        } else {
            connection.parent.close(promise: nil)
        }
    }

    private func armIdleTimer(_ connection: Connection, key: String) {
        connection.idleTimer?.cancel()
        connection.idleTimer = connection.parent.eventLoop.scheduleTask(in: Self.idleTimeout) { [self] in
            guard connection.streams == 0 else { return }
            retire(connection, key: key)
        }
    }
}
