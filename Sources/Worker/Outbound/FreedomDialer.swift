import Dispatch
import NIOCore
import NIOPosix
import Shared

/// The freedom outbound: connects to the requested destination directly (or to `redirect`).
/// Domain names are resolved off the event loop (getaddrinfo on a dispatch queue), filtered by the
/// configured domainStrategy; with a `dns` section, the UseIP* strategies resolve through the
/// built-in DNS instead, as V2Ray's freedom does (AsIs stays with the system resolver there too).
struct FreedomDialer {
    let settings: FreedomSettings
    var dns: DNSResolver?
    /// The outbound's socket options and `sendThrough`.
    let dial: DialOptions

    init(settings: FreedomSettings, dns: DNSResolver? = nil, dial: DialOptions = .none) {
        self.settings = settings
        self.dns = dns
        self.dial = dial
    }

    /// The built-in DNS when it applies to this outbound's strategy.
    private var builtinDNS: DNSResolver? { settings.domainStrategy == .asIs ? nil : dns }

    func target(for address: VMessAddress, port: UInt16) -> (host: String, port: Int) {
        if let h = settings.redirectHost, !h.isEmpty { return (h, settings.redirectPort ?? Int(port)) }
        if let p = settings.redirectPort, p != 0 { return (address.hostText, p) }
        return (address.hostText, Int(port))
    }

    var resolverFamily: FamilyResolver.Family {
        switch settings.domainStrategy {
        case .asIs, .useIP: .any
        case .useIPv4: .ipv4
        case .useIPv6: .ipv6
        }
    }

    func connectTCP(on loop: EventLoop, to address: VMessAddress, port: UInt16, timeout: TimeAmount,
                    initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let (host, p) = target(for: address, port: port)
        var bootstrap = dial.prepare(ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .connectTimeout(timeout), initializer: initializer)
        if let dns = builtinDNS {
            bootstrap = bootstrap.resolver(DNSResolver.Adapter(dns, family: resolverFamily, caller: loop))
        } else if resolverFamily != .any {
            bootstrap = bootstrap.resolver(FamilyResolver(loop: loop, family: resolverFamily))
        }
        if let literal = literalTarget(host: host, address: address, port: p) { return bootstrap.connect(to: literal) }
        return bootstrap.connect(host: host, port: p)
    }

    /// The target as a socket address when it is an IP literal that the resolver would only have
    /// handed back: the system resolver (no built-in DNS) with any family, or the literal's own.
    /// NIO's connect(host:) resolves even a literal, with getaddrinfo on another thread for A and AAAA
    /// and a Happy Eyeballs race, per connection, for an answer that is the literal itself (measured:
    /// no visible change in CPU per connection, Benchmarks/README.md; it is work for nothing all the same).
    func literalTarget(host: String, address: VMessAddress, port: Int) -> NIOCore.SocketAddress? {
        guard builtinDNS == nil else { return nil }
        let target: VMessAddress?
        if let h = settings.redirectHost, !h.isEmpty { target = IPLiteral.parse(h) } else { target = address }
        switch target {
        case .ipv4? where resolverFamily != .ipv6, .ipv6? where resolverFamily != .ipv4:
            return try? NIOCore.SocketAddress(ipAddress: host, port: port)
        default:
            return nil
        }
    }

    /// Resolves the destination to one socket address (UDP needs a concrete address up front).
    func resolve(on loop: EventLoop, _ address: VMessAddress, port: UInt16) -> EventLoopFuture<NIOCore.SocketAddress> {
        let (host, p) = target(for: address, port: port)
        if let ip = try? NIOCore.SocketAddress(ipAddress: host, port: p) { return loop.makeSucceededFuture(ip) }
        let resolver: Resolver = builtinDNS.map { DNSResolver.Adapter($0, family: resolverFamily, caller: loop) }
            ?? FamilyResolver(loop: loop, family: resolverFamily)
        return resolver.initiateAQuery(host: host, port: p).and(resolver.initiateAAAAQuery(host: host, port: p))
            .flatMapThrowing { v4, v6 in
                guard let first = v4.first ?? v6.first else { throw FamilyResolver.NoAddress(host: host) }
                return first
            }
    }
}

/// A NIO `Resolver` over getaddrinfo, run on a dispatch queue so the event loop never blocks, that
/// can leave out one address family (freedom's UseIPv4 / UseIPv6).
final class FamilyResolver: Resolver, @unchecked Sendable {
    enum Family { case any, ipv4, ipv6 }
    struct NoAddress: Error { var host: String }

    private static let queue = DispatchQueue(label: "vmessd.resolver", attributes: .concurrent)
    private let loop: EventLoop
    private let family: Family

    init(loop: EventLoop, family: Family) {
        self.loop = loop
        self.family = family
    }

    func initiateAQuery(host: String, port: Int) -> EventLoopFuture<[NIOCore.SocketAddress]> {
        family == .ipv6 ? loop.makeSucceededFuture([]) : query(host, port, AF_INET)
    }

    func initiateAAAAQuery(host: String, port: Int) -> EventLoopFuture<[NIOCore.SocketAddress]> {
        family == .ipv4 ? loop.makeSucceededFuture([]) : query(host, port, AF_INET6)
    }

    func cancelQueries() {}

    private func query(_ host: String, _ port: Int, _ af: Int32) -> EventLoopFuture<[NIOCore.SocketAddress]> {
        let promise = loop.makePromise(of: [NIOCore.SocketAddress].self)
        FamilyResolver.queue.async {
            var hints = addrinfo()
            hints.ai_family = af
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &res) == 0, let first = res else {
                promise.succeed([])
                return
            }
            defer { freeaddrinfo(first) }
            var out: [NIOCore.SocketAddress] = []
            var cur: UnsafeMutablePointer<addrinfo>? = first
            while let ai = cur {
                if let sa = ai.pointee.ai_addr {
                    switch Int32(sa.pointee.sa_family) {
                    case AF_INET:
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { out.append(NIOCore.SocketAddress($0.pointee, host: host)) }
                    case AF_INET6:
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { out.append(NIOCore.SocketAddress($0.pointee, host: host)) }
                    default: break
                    }
                }
                cur = ai.pointee.ai_next
            }
            promise.succeed(out)
        }
        return promise.futureResult
    }
}
