/// The router's answer.
public enum RouteDecision: Hashable, Sendable {
    /// Index into the `outboundTags` the router was built with (0 is the default outbound).
    case outbound(Int)
    /// The domain strategy needs the destination's addresses: resolve `domain`, set
    /// `RouteRequest.resolvedIPs` (empty if resolution failed) and call `route` again.
    case resolveFirst
}
