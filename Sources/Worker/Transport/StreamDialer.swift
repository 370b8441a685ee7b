import NIOCore
import NIOPosix
import NIOSSL
import Shared

/// The client side of a stream transport (`streamSettings` of an outbound): connects to a server
/// and hands back a channel whose pipeline carries the raw byte stream as `ByteBuffer`s once the
/// transport handshake (TLS, WebSocket upgrade, httpupgrade) is complete.
///
///   tcp:          [NIOSSLClientHandler] → protocol handlers
///   tcp + http header: [NIOSSLClientHandler] → TCPHTTPHeaderClientHandler → protocol handlers
///   ws:           [NIOSSLClientHandler] → ClientUpgradeHandler → protocol handlers   (then WebSocket framing)
///   httpupgrade:  [NIOSSLClientHandler] → ClientUpgradeHandler → protocol handlers   (then raw bytes)
///   grpc, h2:     [NIOSSLClientHandler] → NIOHTTP2Handler, shared (H2ConnectionPool); the returned
///                 channel is one HTTP/2 stream: H2StreamHandler → protocol handlers   (StreamDialer+H2.swift)
///   kcp:          [NIOSSLClientHandler] → protocol handlers, on the local end of an mKCP session (KCPDialer)
///
/// The protocol handlers are added by `initializer` when the channel is created and see
/// channelActive at TCP connect; what they write before the transport is ready is held (and, with
/// early data configured, partly carried inside the upgrade request). With early data the returned
/// future completes as soon as the TLS handshake is done, because the upgrade request waits for the
/// protocol's first write; otherwise it completes after the server's 101.
struct StreamDialer {
    let stream: StreamSettings
    /// The outbound's socket options and `sendThrough`.
    let dial: DialOptions
    /// `proxySettings`: connections are carried by another outbound instead of a socket of their own
    /// (set once every outbound of the worker exists).
    var proxy: ProxyDial?
    /// Built once per outbound (not per connection): parsing certificates and trust roots is costly.
    let tls: NIOSSLContext?
    private let tlsSetupError: Error?
    /// grpc, h2: the shared HTTP/2 connections (one pool per outbound and worker).
    let h2Pool = H2ConnectionPool()

    init(stream: StreamSettings, dial: DialOptions = .none) {
        self.stream = stream
        self.dial = dial
        if stream.security == .tls {
            do {
                tls = try TLSContexts.client(TLSContexts.forTransport(stream))
                tlsSetupError = nil
            } catch {
                tls = nil
                tlsSetupError = error
            }
        } else {
            tls = nil
            tlsSetupError = nil
        }
    }

    /// `initializer` adds the protocol handlers (e.g. the VMess client) after the transport's own.
    /// `timeout` bounds the TCP connect, and separately the transport handshake.
    func connect(host: String, port: Int, on loop: EventLoop, timeout: TimeAmount,
                 initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        if let tlsSetupError { return loop.makeFailedFuture(tlsSetupError) }
        if usesHTTP2 {
            return connectH2(host: host, port: port, on: loop, timeout: timeout, initializer: initializer)
        }
        let ready = loop.makePromise(of: Void.self)
        let stream = self.stream
        let tls = self.tls
        let authority = Self.authority(host: host, port: port)
        let initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    // Ready when TLS (if any) has finished its handshake.
                    let secured = loop.makePromise(of: Void.self)
                    if let tls {
                        let name = TLSContexts.serverHostname(stream.tls ?? TLSSettings(), host: host)
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                        try pipeline.addHandler(TLSHandshakeWatcher(ready: secured, timeout: timeout))
                    } else {
                        secured.succeed(())
                    }
                    let request: ClientUpgradeRequest
                    switch stream.network {
                    case .grpc, .h2:
                        preconditionFailure("HTTP/2 transports are dialled by connectH2")
                    case .kcp:
                        return secured.futureResult.cascade(to: ready)
                    case .tcp:
                        if let settings = stream.tcpHeader {
                            try pipeline.addHandler(TCPHTTPHeaderClientHandler(header: TCPHTTPHeader(settings: settings)))
                        }
                        return secured.futureResult.cascade(to: ready)
                    case .ws:
                        request = ClientUpgradeRequest(webSocket: stream.ws ?? WebSocketSettings(), authority: authority)
                    case .httpupgrade:
                        request = ClientUpgradeRequest(httpUpgrade: stream.httpUpgrade ?? HTTPUpgradeSettings(), authority: authority)
                    }
                    let upgraded = loop.makePromise(of: Void.self)
                    try pipeline.addHandler(ClientUpgradeHandler(request: request, ready: upgraded, timeout: timeout))
                    // With early data the request needs the protocol's first write, so the channel is
                    // handed over once TLS is up and the upgrade completes in the background (a failed
                    // upgrade closes the channel).
                    (request.waitsForFirstWrite ? secured.futureResult : upgraded.futureResult).cascade(to: ready)
                    secured.futureResult.whenFailure { upgraded.fail($0) }
                }.flatMap { initializer(channel) }
            }
        let connected = open(host: host, port: port, on: loop, timeout: timeout, initializer: initializer)
        connected.whenFailure { ready.fail($0) }
        return connected.flatMap { channel in
            ready.futureResult.map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// The returned channel is an HTTP/2 stream (grpc, h2), not a socket.
    var usesHTTP2: Bool { stream.network == .grpc || stream.network == .h2 }

    /// The connection itself: through `proxy`, or a socket of its own with the outbound's options.
    func open(host: String, port: Int, on loop: EventLoop, timeout: TimeAmount,
              initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        if stream.network == .kcp {
            guard proxy == nil else {
                return loop.makeFailedFuture(StreamDialerError.kcpThroughProxy)
            }
            // The session's stream end, wrapped like a TCP connection (sockopt applies to no UDP
            // socket here: the dialer binds its own).
            return KCPDialer.dial(host: host, port: port, settings: stream.kcp ?? KCPSettings(), on: loop).flatMap { dialed in
                let channel = ClientBootstrap(group: loop)
                    .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                    .proxiedStreamReads()
                    .channelInitializer(initializer)
                    .withConnectedSocket(dialed.fd)
                channel.whenComplete { result in
                    switch result {
                    case .success(let channel): channel.closeFuture.whenComplete { _ in dialed.session.streamClosed() }
                    case .failure: dialed.session.streamClosed()
                    }
                }
                return channel
            }
        }
        if let proxy {
            return proxy.connect(host: host, port: port, on: loop, initializer: initializer)
        }
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .connectTimeout(timeout)
        return dial.prepare(bootstrap, initializer: initializer).connect(host: host, port: port)
    }

    /// The Host value Go's clients send by default: host[:port], IPv6 in brackets.
    static func authority(host: String, port: Int) -> String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(h):\(port)"
    }
}

enum StreamDialerError: Error, CustomStringConvertible {
    case kcpThroughProxy
    var description: String {
        switch self {
        case .kcpThroughProxy: "the kcp transport cannot be carried by another outbound (proxySettings)"
        }
    }
}
