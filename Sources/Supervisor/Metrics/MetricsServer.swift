// The Prometheus endpoint (`vmessd.metrics`): HTTP/1.1 on a socket the supervisor binds itself,
// served on a one-thread event loop group of its own (like the gRPC API), so a slow or hostile
// client never reaches the supervisor's poll loop; a scrape reaches the loop only through
// MainLoopBridge, for the short read of shared memory that MetricsSample is.
//
// Bounds: at most `maximumConnections` clients at once (more are closed at accept), a connection
// idle for `idleTimeout` is closed, a request must arrive whole within 10 s of its first byte
// (RequestDeadline), request heads are bounded by NIOHTTP1's parser (80 KiB) and bodies by
// MetricsHTTPHandler. No authentication: loopback by default.

import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Shared

final class MetricsServer {
    static let maximumConnections = 64
    static let idleTimeout = TimeAmount.seconds(15)

    let settings: MetricsSettings
    /// Where it listens ("127.0.0.1:9550"; the real port when the config said 0).
    let address: String
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: Channel

    /// `render`: the exposition text, or nil when the supervisor is exiting (503).
    init(settings: MetricsSettings, render: @escaping @Sendable () async -> [UInt8]?, logger: Logger) throws {
        self.settings = settings
        let fd: Int32
        do {
            fd = try Posix.makeListeningSocket(host: settings.host, port: settings.port, reusePort: false, backlog: 128)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        address = (try? Posix.localAddress(fd: fd)).map { "\($0)" } ?? settings.address
        let open = OpenConnections()
        do {
            channel = try ServerBootstrap(group: group)
                .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: false)
                .childChannelInitializer { channel in
                    // Child channels share the group's one loop: `open` is confined to it.
                    guard open.count < Self.maximumConnections else { return channel.close() }
                    open.count += 1
                    channel.closeFuture.whenComplete { _ in open.count -= 1 }
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        let deadline = RequestDeadline()
                        try pipeline.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout))
                        try pipeline.addHandler(deadline)
                        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                        try pipeline.addHandler(MetricsHTTPHandler(render: render, deadline: deadline))
                    }
                }
                .withBoundSocket(fd)
                .wait()
        } catch {
            try? Posix.close(fd)
            try? group.syncShutdownGracefully()
            throw error
        }
        logger.notice("metrics", metadata: [
            "address": "\(address)", "userLabels": "\(settings.userLabels)",
            "exposed": "\(settings.isLoopback ? "loopback only" : "beyond loopback, unauthenticated")",
        ])
    }

    /// Stops listening and closes open scrapes (their answers are figures, nothing to finish).
    /// `wait`: until the listening socket is closed (bounded), so that its address can be bound
    /// again at once.
    func stop(wait: Bool = false) {
        let closed = channel.close()
        if wait { _ = try? closed.wait() }
        group.shutdownGracefully { _ in }
    }

    /// Number of client connections, on the server's loop.
    private final class OpenConnections { var count = 0 }
}
