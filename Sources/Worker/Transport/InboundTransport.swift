import Logging
import NIOCore
import NIOHTTP2
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
///   grpc, h2:     [NIOSSLServerHandler] → NIOHTTP2Handler → H2ConnectionWatcher; each stream:
///                 H2StreamHandler → protocol handler   (one VMess connection per HTTP/2 stream)
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
    private let h2: H2RequestCheck?
    private let h2Settings: H2ConnectionSettings
    /// Tells HTTP/2 connections (which outlive their streams) that the worker drains.
    private let drain: DrainSignal?
    private let logger: Logger
    /// Counts connections closed for a bad or late PROXY header.
    private let counters: WorkerCounters?

    init(stream: StreamSettings, logger: Logger = Logger(label: "vmessd.worker"), counters: WorkerCounters? = nil,
         drain: DrainSignal? = nil) throws {
        self.stream = stream
        self.logger = logger
        self.counters = counters
        self.drain = drain
        switch stream.security {
        case .none: tls = nil
        case .tls: tls = try TLSContexts.server(TLSContexts.forTransport(stream))
        }
        httpHeader = stream.network == .tcp ? stream.tcpHeader.map(TCPHTTPHeader.init) : nil
        upgrade = switch stream.network {
        case .tcp, .grpc, .h2, .kcp: nil
        case .ws: UpgradeRequestCheck(.webSocket(stream.ws ?? WebSocketSettings()))
        case .httpupgrade: UpgradeRequestCheck(.httpUpgrade(stream.httpUpgrade ?? HTTPUpgradeSettings()))
        }
        h2 = switch stream.network {
        case .tcp, .ws, .httpupgrade, .kcp: nil
        case .grpc: H2RequestCheck(.gun(stream.grpc ?? GRPCSettings()))
        case .h2: H2RequestCheck(.http(stream.http ?? HTTPSettings()))
        }
        h2Settings = H2ConnectionSettings(windowSize: stream.grpc?.initialWindowSize)
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
            if let h2 {
                let watcher = H2ConnectionWatcher(drain: drain)
                let logger = self.logger
                _ = try pipeline.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: h2Settings.connection(server: true),
                    streamConfiguration: h2Settings.stream, streamDelegate: watcher
                ) { streamChannel in
                    streamChannel.eventLoop.makeCompletedFuture {
                        try streamChannel.pipeline.syncOperations.addHandler(
                            H2StreamHandler(role: .server(check: h2, installProtocol: installProtocol),
                                        logger: logger))
                    }
                }
                try pipeline.addHandler(watcher)
                return
            }
            guard let upgrade else { return try installProtocol(channel) }
            try pipeline.addHandler(ServerUpgradeHandler(check: upgrade, logger: logger, installProtocol: installProtocol))
        }
    }
}
