import Logging
import NIOCore
import NIOSSL
import Shared

/// The stream transport of an inbound (`streamSettings`): sets up whatever sits between the
/// accepted TCP connection and the protocol handler, so that the protocol handler always sees the
/// client's byte stream as plain `ByteBuffer`s (and writes plain `ByteBuffer`s back).
///
/// With `acceptProxyProtocol`, ProxyProtocolHandler comes first, before TLS: the balancer's header is
/// plain bytes ahead of the client's stream.
///
///   tcp:          [NIOSSLServerHandler] → protocol handler
///   tcp + http header: [NIOSSLServerHandler] → TCPHTTPHeaderServerHandler → protocol handler
///   ws:           [NIOSSLServerHandler] → ServerUpgradeHandler   (then WebSocket framing)
///   httpupgrade:  [NIOSSLServerHandler] → ServerUpgradeHandler   (then raw bytes)
///   kcp:          [NIOSSLServerHandler] → protocol handler, on the local end of an mKCP session
///                 (KCPListener; WorkerProcess+KCP)
///
/// Built once per inbound and worker generation; the TLS context (certificates) lives here, so a
/// reload's new workers serve the re-read certificates.
struct InboundTransport {
    let stream: StreamSettings
    private let tls: NIOSSLContext?
    private let upgrade: UpgradeRequestCheck?
    private let httpHeader: TCPHTTPHeader?
    private let logger: Logger
    /// Counts connections closed for a bad or late PROXY header.
    private let counters: WorkerCounters?

    init(stream: StreamSettings, logger: Logger = Logger(label: "vmessd.worker"), counters: WorkerCounters? = nil) throws {
        self.stream = stream
        self.logger = logger
        self.counters = counters
        switch stream.security {
        case .none: tls = nil
        case .tls: tls = try TLSContexts.server(stream.tls ?? TLSSettings())
        }
        httpHeader = stream.network == .tcp ? stream.tcpHeader.map(TCPHTTPHeader.init) : nil
        switch stream.network {
        case .tcp, .kcp: upgrade = nil
        case .ws: upgrade = UpgradeRequestCheck(.webSocket(stream.ws ?? WebSocketSettings()))
        case .httpupgrade: upgrade = UpgradeRequestCheck(.httpUpgrade(stream.httpUpgrade ?? HTTPUpgradeSettings()))
        }
    }

    /// Called for every accepted connection, on its event loop. `claimSource`: with
    /// `acceptProxyProtocol`, told the client address the header carried (nil: the peer itself);
    /// false closes the connection (see ConnectionTracker.Handler.claim).
    func configure(_ channel: Channel, claimSource: @escaping (NIOCore.SocketAddress?) -> Bool = { _ in true },
                   installProtocol: @escaping (Channel) throws -> Void) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if stream.acceptProxyProtocol {
                try pipeline.addHandler(ProxyProtocolHandler(logger: logger, admit: claimSource) { [counters] name in
                    counters?.rejected[name, default: 0] += 1
                })
            }
            if let tls {
                try pipeline.addHandler(NIOSSLServerHandler(context: tls))
            }
            if let httpHeader {
                try pipeline.addHandler(TCPHTTPHeaderServerHandler(header: httpHeader, logger: logger))
            }
            guard let upgrade else { return try installProtocol(channel) }
            try pipeline.addHandler(ServerUpgradeHandler(check: upgrade, logger: logger, installProtocol: installProtocol))
        }
    }
}
