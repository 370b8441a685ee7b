import NIOCore
import Shared

/// Who asked for a connection or datagram: what routing rules may match besides the destination.
struct RequestOrigin {
    var inboundTag: String?
    /// The VMess user's email (`user` rules); nil for inbounds without users.
    var user: String?
    /// The client's address (`source`, `sourcePort` rules).
    var source: NIOCore.SocketAddress?
    /// The inbound's sniffing, until the request has been sniffed (then nil).
    var sniffing: SniffingPolicy?
    /// What sniffing found: the protocol (`protocol` rules) and, with `routeOnly`, the name routing
    /// matches domain rules against instead of the destination's.
    var sniffedProtocol: String?
    var routingDomain: String?

    init(inboundTag: String? = nil, user: String? = nil, source: NIOCore.SocketAddress? = nil,
         sniffing: SniffingPolicy? = nil) {
        self.inboundTag = inboundTag
        self.user = user
        self.source = source
        self.sniffing = sniffing
    }
}
