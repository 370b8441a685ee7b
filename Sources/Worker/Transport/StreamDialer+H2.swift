import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import Shared

// The client side of the gRPC ("gun") and h2 transports: each dialled connection is one HTTP/2
// stream on a connection shared with the outbound's other streams to the same server
// (H2ConnectionPool), as V2Ray's clients do.
extension StreamDialer {
    func connectH2(host: String, port: Int, on loop: EventLoop, timeout: TimeAmount,
                   initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let pool = h2Pool
        let key = Self.authority(host: host, port: port)
        let request = Self.h2Request(stream, host: host, port: port)
        let gun = stream.network == .grpc
        func attempt(retry: Bool) -> EventLoopFuture<Channel> {
            pool.connection(key, on: loop) { openH2Connection(host: host, port: port, on: loop, timeout: timeout) }
                .flatMap { connection -> EventLoopFuture<Channel> in
                    pool.streamOpened(on: connection)
                    return connection.multiplexer.createStreamChannel { streamChannel in
                        streamChannel.eventLoop.makeCompletedFuture {
                            let response = streamChannel.eventLoop.makePromise(of: Void.self)
                            try streamChannel.pipeline.syncOperations.addHandler(H2StreamHandler(
                                role: .client(request: request, gun: gun, response: response),
                                logger: Logger(label: "vmessd.worker")))
                        }.flatMap { initializer(streamChannel) }
                    }.map { streamChannel in
                        streamChannel.closeFuture.whenComplete { _ in pool.streamClosed(on: connection, key: key) }
                        return streamChannel
                    }.flatMapError { error in
                        pool.streamClosed(on: connection, key: key)
                        // A connection after GOAWAY (or closing) refuses new streams: once more on a new
                        // one. Other errors (the protocol's initializer, a cancelled dial) are the caller's.
                        guard error is NIOHTTP2Errors.CreatedStreamAfterGoaway || !connection.parent.isActive else {
                            return loop.makeFailedFuture(error)
                        }
                        pool.retire(connection, key: key)
                        return retry ? attempt(retry: false) : loop.makeFailedFuture(error)
                    }
                }
        }
        return attempt(retry: true)
    }

    /// A new HTTP/2 connection (TCP or through `proxy`, TLS with ALPN h2 if configured).
    private func openH2Connection(host: String, port: Int, on loop: EventLoop,
                                  timeout: TimeAmount) -> EventLoopFuture<H2ConnectionPool.Connection> {
        let tls = self.tls
        let tlsSettings = stream.tls ?? TLSSettings()
        let settings = H2ConnectionSettings(windowSize: stream.grpc?.initialWindowSize)
        let keepAlive = (stream.grpc?.keepAlive ?? stream.http?.keepAlive).map(H2KeepAlive.init)
        let secured = loop.makePromise(of: Void.self)
        let connection: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let tls {
                    let name = TLSContexts.serverHostname(tlsSettings, host: host)
                    try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                    try pipeline.addHandler(TLSHandshakeWatcher(ready: secured, timeout: timeout, expectedProtocol: "h2"))
                } else {
                    secured.succeed(())
                }
                if let keepAlive { try pipeline.addHandler(H2KeepAliveReads(keepAlive)) }
                // The server may not open streams towards a client (no push): refuse any it tries.
                _ = try pipeline.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: settings.connection(server: false),
                    streamConfiguration: settings.stream
                ) { $0.close() }
                try pipeline.addHandler(H2ConnectionWatcher(drain: nil, idleTimeout: nil))
                if let keepAlive { try pipeline.addHandler(H2KeepAlivePings(keepAlive)) }
            }
        }
        return open(host: host, port: port, on: loop, timeout: timeout, initializer: connection).flatMap { parent in
            secured.futureResult.flatMapThrowing {
                let multiplexer = try parent.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
                let connection = H2ConnectionPool.Connection(parent: parent, multiplexer: multiplexer)
                keepAlive?.streams = { [weak connection] in connection?.streams ?? 0 }
                return connection
            }.flatMapErrorThrowing { error in
                parent.close(promise: nil)
                throw error
            }
        }
    }

    /// The request head: gun as grpc-go sends it (V2Ray's and Xray's clients are grpc-go), h2 as
    /// V2Ray's h2 client (Go's http2.Transport) does.
    static func h2Request(_ stream: StreamSettings, host: String, port: Int) -> HPACKHeaders {
        let scheme = stream.security == .tls ? "https" : "http"
        if stream.network == .grpc {
            let grpc = stream.grpc ?? GRPCSettings()
            let authority = stream.tls?.serverName.flatMap { $0.isEmpty ? nil : $0 } ?? authority(host: host, port: port)
            return HPACKHeaders([
                (":method", "POST"), (":scheme", scheme), (":path", grpc.path(multi: grpc.multiMode)),
                (":authority", authority), ("content-type", "application/grpc"), ("te", "trailers"),
                ("user-agent", grpc.userAgent ?? "grpc-go/1.48.0"),
            ])
        }
        let http = stream.http ?? HTTPSettings()
        let hosts = http.effectiveHosts
        var headers = HPACKHeaders([
            (":method", http.method), (":scheme", scheme), (":path", http.path),
            (":authority", hosts[Int.random(in: 0..<hosts.count)]),
        ])
        for field in http.headers { headers.add(name: field.name, value: field.value) }
        // As V2Ray's client: no compression of the stream.
        if !headers.contains(name: "accept-encoding") { headers.add(name: "accept-encoding", value: "identity") }
        return headers
    }
}
