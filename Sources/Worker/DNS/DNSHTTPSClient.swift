import NIOCore
import NIOHTTP1
import Shared

/// One DNS over HTTPS server of the built-in DNS (`https://` or `https+local://`, RFC 8484), as
/// V2Ray's DoH client speaks it: each question is a POST of the DNS message (`application/dns-message`).
///
/// TLS offers ALPN h2 and http/1.1, as Go's client does. Over HTTP/2 every question is a stream on
/// one shared connection per way out (StreamDialer's H2ConnectionPool: reused while questions come,
/// closed after 30 s without one), so a busy resolver pays one TCP and TLS handshake, not one per
/// question. A server that chooses http/1.1 is remembered as such and then gets one connection per
/// question (DNSHTTP1Exchange). `https://` questions take the way routing gives (inbound tag
/// `dns.tag`): straight from a socket of their own when that is a plain freedom, else carried by the
/// outbound (ProxyDial), each outbound with connections of its own. `https+local://` is always
/// direct. The server's certificate is checked against the system's trust roots (`SSL_CERT_FILE`
/// replaces them, as for Go programs) and the URL's host: its name (also sent as SNI), or its IP address.
///
/// Event-loop confined, like the resolver that owns it.
final class DNSHTTPSClient {
    let host: String
    let port: UInt16
    let path: String
    let routed: Bool
    /// "host" or "host:port", IPv6 in brackets: the :authority / Host a browser or Go would send.
    let authority: String
    /// The server chose http/1.1 over h2 (ALPN): later questions go straight to HTTP/1.1.
    private(set) var speaksHTTP1 = false
    private var dialers: [DialerKey: StreamDialer] = [:]
    private struct DialerKey: Hashable {
        /// nil: directly.
        var outbound: ObjectIdentifier?
        var http1: Bool
    }

    init(host: String, port: UInt16, path: String, routed: Bool) {
        self.host = host
        self.port = port
        self.path = path
        self.routed = routed
        let bracketed = host.contains(":") ? "[\(host)]" : host
        authority = port == 443 ? bracketed : "\(bracketed):\(port)"
    }

    /// Where `https://` questions go, for routing: the server's address, or its name.
    var destination: Destination {
        Destination(network: .tcp, address: IPLiteral.parse(host) ?? .domain(host), port: port)
    }

    private func streamSettings(http1: Bool) -> StreamSettings {
        var stream = StreamSettings()
        stream.security = .tls
        var tls = TLSSettings()
        if http1 {
            stream.network = .tcp
            tls.alpn = ["http/1.1"]
        } else {
            stream.network = .h2
            tls.alpn = ["h2", "http/1.1"]
            var http = HTTPSettings()
            http.hosts = [authority]
            http.path = path
            http.method = "POST"
            http.headers = [.init(name: "content-type", value: "application/dns-message"),
                            .init(name: "accept", value: "application/dns-message")]
            stream.http = http
        }
        stream.tls = tls
        return stream
    }

    /// The dialer for questions carried by `outbound` (nil: directly), for the HTTP version in use.
    private func dialer(through outbound: Outbound?, http1: Bool, makeProxy: (Outbound) throws -> ProxyDial) throws -> StreamDialer {
        let key = DialerKey(outbound: outbound.map(ObjectIdentifier.init), http1: http1)
        if let existing = dialers[key] { return existing }
        var made = StreamDialer(stream: streamSettings(http1: http1))
        if let outbound { made.proxy = try makeProxy(outbound) }
        dialers[key] = made
        return made
    }

    /// Asks `question` (through `outbound`, or directly); the reply must echo the question (its id
    /// is 0, as RFC 8484 recommends for caches). The whole exchange, connection set-up included, has
    /// `timeout`; a first answer of "http/1.1" to ALPN is retried within it over HTTP/1.1.
    func ask(_ question: DNSQuestion, through outbound: Outbound?, on loop: EventLoop,
             timeout: TimeAmount = DNSTCPExchange.timeout,
             makeProxy: @escaping (Outbound) throws -> ProxyDial) -> EventLoopFuture<DNSReply> {
        let deadline = NIODeadline.now() + timeout
        // The dialers (each with its TLS context) are made on first use of each HTTP version.
        func over(http1: Bool) -> EventLoopFuture<DNSReply> {
            let dialer: StreamDialer
            do {
                dialer = try self.dialer(through: outbound, http1: http1, makeProxy: makeProxy)
            } catch {
                return loop.makeFailedFuture(error)
            }
            return http1 ? askHTTP1(question, dialer: dialer, on: loop, deadline: deadline)
                : askHTTP2(question, dialer: dialer, on: loop, deadline: deadline)
        }
        if speaksHTTP1 { return over(http1: true) }
        return over(http1: false).flatMapError { [self] error in
            guard let mismatch = error as? TLSHandshakeWatcher.ProtocolMismatch else { return loop.makeFailedFuture(error) }
            guard mismatch.negotiated == "http/1.1" else {
                return loop.makeFailedFuture(DNSLookupError.unreachable("\(mismatch)"))
            }
            speaksHTTP1 = true
            return over(http1: true)
        }
    }

    private func askHTTP2(_ question: DNSQuestion, dialer: StreamDialer, on loop: EventLoop, deadline: NIODeadline) -> EventLoopFuture<DNSReply> {
        let exchange = DNSHTTPSExchange(question: question, outcome: DNSChannelQuestion(on: loop, deadline: deadline))
        let connecting = dialer.connect(host: host, port: Int(port), on: loop, timeout: deadline - .now()) { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(exchange) }
        }
        exchange.outcome.follow(connecting) { exchange.send(on: $0) }
        return exchange.outcome.futureResult
    }

    private func askHTTP1(_ question: DNSQuestion, dialer: StreamDialer, on loop: EventLoop, deadline: NIODeadline) -> EventLoopFuture<DNSReply> {
        let exchange = DNSHTTP1Exchange(question: question, authority: authority, path: path,
                                        outcome: DNSChannelQuestion(on: loop, deadline: deadline))
        let connecting = dialer.connect(host: host, port: Int(port), on: loop, timeout: deadline - .now()) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(exchange)
            }
        }
        exchange.outcome.follow(connecting) { exchange.send(on: $0) }
        return exchange.outcome.futureResult
    }
}
