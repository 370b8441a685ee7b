import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOSSL
import Shared

// The client side of the gRPC ("gun") and h2 transports: one HTTP/2 connection per dialled
// connection, carrying one stream. (V2Ray's clients share a connection among streams; a server
// cannot tell the difference, and a connection per stream keeps a slow stream from holding back
// the others through the shared connection window.)
extension StreamDialer {
    func connectH2(host: String, port: Int, on loop: EventLoop, timeout: TimeAmount,
                   initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let tls = self.tls
        let tlsSettings = stream.tls ?? TLSSettings()
        let settings = H2ConnectionSettings(windowSize: stream.grpc?.initialWindowSize)
        let request = Self.h2Request(stream, host: host, port: port)
        let gun = stream.network == .grpc
        let secured = loop.makePromise(of: Void.self)
        let connection: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let tls {
                    let name = TLSContexts.serverHostname(tlsSettings, host: host)
                    try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: name))
                    try pipeline.addHandler(TLSHandshakeWatcher(ready: secured, timeout: timeout))
                } else {
                    secured.succeed(())
                }
                // The server may not open streams towards a client (no push): refuse any it tries.
                _ = try pipeline.configureHTTP2Pipeline(
                    mode: .client, connectionConfiguration: settings.connection(server: false),
                    streamConfiguration: settings.stream
                ) { $0.close() }
            }
        }
        return open(host: host, port: port, on: loop, timeout: timeout, initializer: connection).flatMap { parent in
            secured.futureResult.flatMap { () -> EventLoopFuture<Channel> in
                let multiplexer: NIOHTTP2Handler.StreamMultiplexer
                do {
                    multiplexer = try parent.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer()
                } catch {
                    return loop.makeFailedFuture(error)
                }
                return multiplexer.createStreamChannel { streamChannel in
                    streamChannel.eventLoop.makeCompletedFuture {
                        let response = streamChannel.eventLoop.makePromise(of: Void.self)
                        try streamChannel.pipeline.syncOperations.addHandler(H2StreamHandler(
                            role: .client(request: request, gun: gun, response: response),
                            logger: Logger(label: "vmessd.worker")))
                    }.flatMap { initializer(streamChannel) }
                }.map { streamChannel in
                    // One stream per connection: the connection ends with it.
                    streamChannel.closeFuture.whenComplete { _ in parent.close(promise: nil) }
                    return streamChannel
                }
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
                ("user-agent", "grpc-go/1.48.0"),
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
