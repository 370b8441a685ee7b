import NIOCore

/// Who asked for a connection or datagram: what routing rules may match besides the destination.
struct RequestOrigin {
    var inboundTag: String?
    /// The VMess user's email (`user` rules); nil for inbounds without users.
    var user: String?
    /// The client's address (`source`, `sourcePort` rules).
    var source: NIOCore.SocketAddress?

    init(inboundTag: String? = nil, user: String? = nil, source: NIOCore.SocketAddress? = nil) {
        self.inboundTag = inboundTag
        self.user = user
        self.source = source
    }
}
