import NIOCore
import NIOHPACK
import Shared

/// One DNS over HTTPS server of the built-in DNS (`https://` or `https+local://`, RFC 8484), as
/// V2Ray's DoH client speaks it: each question is a POST of the DNS message (`application/dns-message`)
/// on its own HTTP/2 stream, over TLS with ALPN h2.
///
/// Streams share one HTTP/2 connection per way out (StreamDialer's H2ConnectionPool: reused while
/// questions come, closed after 30 s without one), so a busy resolver pays one TCP and TLS handshake,
/// not one per question. `https://` questions take the way routing gives (inbound tag `dns.tag`):
/// straight from a socket of their own when that is a plain freedom, else carried by the outbound
/// (ProxyDial), each outbound with a connection of its own. `https+local://` is always direct. The
/// server's certificate is checked against the system's trust roots (`SSL_CERT_FILE` replaces them,
/// as for Go programs) and the URL's host: its name (also sent as SNI), or its IP address.
///
/// Event-loop confined, like the resolver that owns it.
final class DNSHTTPSClient {
    let host: String
    let port: UInt16
    let routed: Bool
    private let stream: StreamSettings
    private var direct: StreamDialer?
    /// One dialer (and so one HTTP/2 connection) per outbound that carries the questions.
    private var proxied: [ObjectIdentifier: StreamDialer] = [:]

    init(host: String, port: UInt16, path: String, routed: Bool) {
        self.host = host
        self.port = port
        self.routed = routed
        var stream = StreamSettings()
        stream.network = .h2
        stream.security = .tls
        var http = HTTPSettings()
        // The :authority a browser or Go would send: the host, with the port unless it is 443.
        let bracketed = host.contains(":") ? "[\(host)]" : host
        http.hosts = [port == 443 ? bracketed : "\(bracketed):\(port)"]
        http.path = path
        http.method = "POST"
        http.headers = [.init(name: "content-type", value: "application/dns-message"),
                        .init(name: "accept", value: "application/dns-message")]
        stream.http = http
        stream.tls = TLSSettings()
        self.stream = stream
    }

    /// Where `https://` questions go, for routing: the server's address, or its name.
    var destination: Destination {
        Destination(network: .tcp, address: IPLiteral.parse(host) ?? .domain(host), port: port)
    }

    /// The dialer for questions carried by `outbound` (nil: directly).
    func dialer(through outbound: Outbound?, makeProxy: (Outbound) throws -> ProxyDial) throws -> StreamDialer {
        guard let outbound else {
            if let direct { return direct }
            let made = StreamDialer(stream: stream)
            direct = made
            return made
        }
        let key = ObjectIdentifier(outbound)
        if let existing = proxied[key] { return existing }
        var made = StreamDialer(stream: stream)
        made.proxy = try makeProxy(outbound)
        proxied[key] = made
        return made
    }

    /// Asks `question` through `dialer`; the reply must echo the question (its id is 0, as RFC 8484
    /// recommends for caches). The whole exchange, connection set-up included, has `timeout`.
    func ask(_ question: DNSQuestion, dialer: StreamDialer, on loop: EventLoop,
             timeout: TimeAmount = DNSTCPExchange.timeout) -> EventLoopFuture<DNSReply> {
        let exchange = DNSHTTPSExchange(question: question, promise: loop.makePromise())
        let timer = loop.scheduleTask(in: timeout) { exchange.fail(DNSLookupError.timeout) }
        exchange.promise.futureResult.whenComplete { _ in timer.cancel() }
        dialer.connect(host: host, port: Int(port), on: loop, timeout: timeout) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(exchange) }
        }.whenComplete { result in
            switch result {
            case .success(let channel): exchange.start(channel)
            case .failure(let error): exchange.fail(DNSLookupError.unreachable("\(error)"))
            }
        }
        return exchange.promise.futureResult
    }
}
