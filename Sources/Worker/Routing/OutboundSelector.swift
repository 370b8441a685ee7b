import NIOCore
import Shared

/// Every configured outbound of a worker, and the choice among them for each request (a connection,
/// a Mux.Cool session, a datagram): the routing rules when the config has them, else the first
/// outbound, as V2Ray does. The choice itself is pure (`Router` in Shared); this type only acts on it:
/// resolving a domain first where the domain strategy asks for IPs, and routing UDP per datagram.
final class OutboundSelector {
    enum Choice: Equatable {
        case outbound(Int)
        /// IPIfNonMatch / IPOnDemand: decide again with the destination's addresses.
        case resolveFirst
    }

    /// (destination, origin, resolved addresses of a domain destination: nil before resolution,
    /// empty when it found nothing) → choice.
    typealias Decide = (Destination, RequestOrigin, [[UInt8]]?) -> Choice
    /// Resolves a domain destination to raw addresses (4 or 16 bytes each), off the event loop.
    typealias Resolve = (Destination, EventLoop) -> EventLoopFuture<[[UInt8]]>

    let outbounds: [Outbound]
    private let decide: Decide?
    let resolve: Resolve

    /// Without `decide` every request goes to the first outbound.
    init(outbounds: [Outbound], decide: Decide? = nil, resolve: @escaping Resolve = OutboundSelector.systemResolve) {
        precondition(!outbounds.isEmpty, "the config parser always provides an outbound")
        self.outbounds = outbounds
        self.decide = decide
        self.resolve = resolve
    }

    var routes: Bool { decide != nil }

    /// The choice for one destination (`resolved` nil on the first ask).
    func choose(_ destination: Destination, origin: RequestOrigin, resolved: [[UInt8]]? = nil) -> Choice {
        guard let decide else { return .outbound(0) }
        switch decide(destination, origin, resolved) {
        case .outbound(let i) where outbounds.indices.contains(i): return .outbound(i)
        case .outbound: return .outbound(0)
        case .resolveFirst: return resolved == nil ? .resolveFirst : .outbound(0)
        }
    }

    /// The second ask, once the domain's resolution has finished (a failure counts as no address):
    /// it always names an outbound.
    func chooseAfterResolving(_ destination: Destination, origin: RequestOrigin,
                              _ result: Result<[[UInt8]], Error>) -> Int {
        if case .outbound(let i) = choose(destination, origin: origin, resolved: (try? result.get()) ?? []) { return i }
        return 0  // unreachable: `choose` never asks to resolve again
    }

    /// The decision function of a compiled `Router` (Shared): the request it sees is built from the
    /// destination and the origin.
    static func decide(with router: Router) -> Decide {
        { destination, origin, resolved in
            var request = RouteRequest(port: destination.port, network: destination.network == .udp ? .udp : .tcp,
                                       inboundTag: origin.inboundTag, user: origin.user)
            switch destination.address {
            case .domain(let d): request.domain = d
            case .ipv4(let b), .ipv6(let b): request.ip = b
            }
            if let sniffed = origin.routingDomain { request.domain = sniffed }
            request.sniffedProtocol = origin.sniffedProtocol
            if let source = origin.source {
                request.sourceIP = rawAddress(source)
                request.sourcePort = source.port.map { UInt16(truncatingIfNeeded: $0) }
            }
            request.resolvedIPs = resolved
            switch router.route(request) {
            case .outbound(let i): return .outbound(i)
            case .resolveFirst: return .resolveFirst
            }
        }
    }

    /// Opens the link for a request. UDP with routing gets a link that routes every datagram by its
    /// own destination (XUDP and SOCKS carry one per packet).
    func open(_ destination: Destination, origin: RequestOrigin, sink: DownstreamSink, loop: EventLoop,
              level: LevelPolicy) -> UpstreamLink {
        if let sniffing = origin.sniffing, destination.network == .tcp {
            return SniffingLink(selector: self, policy: sniffing, destination: destination, origin: origin, sink: sink,
                                loop: loop, level: level)
        }
        guard routes else { return outbounds[0].open(destination, sink: sink, loop: loop, level: level) }
        if destination.network == .udp {
            return RoutedUDPLink(selector: self, origin: origin, sink: sink, loop: loop, level: level)
        }
        switch choose(destination, origin: origin) {
        case .outbound(let i):
            return outbounds[i].open(destination, sink: sink, loop: loop, level: level)
        case .resolveFirst:
            return DeferredLink(selector: self, destination: destination, origin: origin, sink: sink, loop: loop, level: level)
        }
    }

    /// getaddrinfo through the freedom outbound's resolver (off the loop); no address is an empty list.
    static func systemResolve(_ destination: Destination, _ loop: EventLoop) -> EventLoopFuture<[[UInt8]]> {
        guard case .domain(let host) = destination.address else { return loop.makeSucceededFuture([]) }
        let resolver = FamilyResolver(loop: loop, family: .any)
        return resolver.initiateAQuery(host: host, port: Int(destination.port))
            .and(resolver.initiateAAAAQuery(host: host, port: Int(destination.port)))
            .map { v4, v6 in (v4 + v6).compactMap(Self.rawAddress) }
            .recover { _ in [] }
    }

    static func rawAddress(_ address: NIOCore.SocketAddress) -> [UInt8]? {
        switch UDPLink.address(address) {
        case .ipv4(let b), .ipv6(let b): return b
        case .domain: return nil
        }
    }
}
