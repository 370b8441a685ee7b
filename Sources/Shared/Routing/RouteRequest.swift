/// What the router knows about one stream when it decides: the destination, where the stream came
/// from and what sniffing saw. One per connection, Mux sub-session or XUDP packet.
public struct RouteRequest: Sendable {
    /// Destination domain as the client sent it (or as sniffed); case and a trailing dot do not matter.
    public var domain: String?
    /// Destination address when the client gave one (4 or 16 bytes).
    public var ip: [UInt8]?
    public var port: UInt16
    public var network: RouteNetwork
    public var inboundTag: String?
    /// The authenticated user's email.
    public var user: String?
    public var sourceIP: [UInt8]?
    public var sourcePort: UInt16?
    /// Sniffed protocol ("http1", "tls", "bittorrent", ...).
    public var sniffedProtocol: String?
    /// The domain's addresses, set by the caller after a `.resolveFirst` decision. nil: not resolved
    /// yet; empty: resolution gave nothing (then IP conditions cannot hold and the router never asks
    /// again).
    public var resolvedIPs: [[UInt8]]?

    public init(domain: String? = nil, ip: [UInt8]? = nil, port: UInt16, network: RouteNetwork = .tcp,
                inboundTag: String? = nil, user: String? = nil, sourceIP: [UInt8]? = nil, sourcePort: UInt16? = nil,
                sniffedProtocol: String? = nil, resolvedIPs: [[UInt8]]? = nil) {
        self.domain = domain
        self.ip = ip
        self.port = port
        self.network = network
        self.inboundTag = inboundTag
        self.user = user
        self.sourceIP = sourceIP
        self.sourcePort = sourcePort
        self.sniffedProtocol = sniffedProtocol
        self.resolvedIPs = resolvedIPs
    }
}
