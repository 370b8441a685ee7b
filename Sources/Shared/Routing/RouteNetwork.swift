/// The transport of a routed stream: a TCP connection or a UDP flow (also Mux and XUDP packets).
public enum RouteNetwork: String, Codable, Sendable, CaseIterable {
    case tcp, udp
}
