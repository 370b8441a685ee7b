import Logging
import NIOCore
import Shared

/// The Mux.Cool client of a vmess outbound (`mux.enabled`, vmess-protocol.md §10): requests become
/// sessions on shared VMess connections (command 3), at most `concurrency` open at once on one
/// connection and at most 128 over a connection's life, as the v2fly client does; a connection is
/// closed after 16 s without sessions. A new connection is opened whenever every existing one is full.
final class MuxClientPool {
    static let muxDomain = "v1.mux.cool"
    /// The port v2fly's mux client dials on the mux address (§10.1); command 3 carries no port at all.
    static let muxPort: UInt16 = 9527
    /// v2fly ClientStrategy.MaxConnection: sessions over one connection's life.
    static let maxSessionsPerConnection = 128
    static let idleTimeout: TimeAmount = .seconds(16)

    let concurrency: Int
    let logger: Logger
    /// Set right after the outbound is built; the pool opens its connections through it.
    weak var outbound: VMessOutbound?
    private var connections: [MuxClientConnection] = []

    init(concurrency: Int, logger: Logger) {
        self.concurrency = max(1, concurrency)
        self.logger = logger
    }

    func open(_ destination: Destination, sink: DownstreamSink, loop: EventLoop, level: LevelPolicy) -> UpstreamLink {
        if let connection = connections.first(where: { $0.loop === loop && $0.canAccept }) {
            return connection.openSession(destination, sink: sink)
        }
        guard let outbound else {
            loop.execute { sink.downstreamFinished(error: true) }
            return BlackholeLink()
        }
        let connection = MuxClientConnection(pool: self, loop: loop, logger: logger)
        connections.append(connection)
        connection.start(outbound: outbound, level: level)
        return connection.openSession(destination, sink: sink)
    }

    func remove(_ connection: MuxClientConnection) {
        connections.removeAll { $0 === connection }
    }

    /// For tests and logs.
    var connectionCount: Int { connections.count }
}
