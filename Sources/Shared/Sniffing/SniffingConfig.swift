/// An inbound's `sniffing` (V2Ray v4/v5, with Xray's `routeOnly` and `domainsExcluded`).
public struct SniffingConfig: Codable, Equatable, Sendable {
    /// Which sniffed protocols replace the destination with the name they carry ("http", "tls";
    /// matched against the protocol name by prefix, as V2Ray does: "http" covers "http1").
    public var destOverride: [String] = []
    /// V2Ray: only metadata sniffers (fakedns) run. vmessd has none, so nothing is sniffed.
    public var metadataOnly = false
    /// Xray: the sniffed name is used for routing only; the connection goes to the original address.
    public var routeOnly = false
    /// Xray: names that never replace the destination (still routed by their sniffed protocol).
    public var domainsExcluded: DomainSet?

    public init(destOverride: [String] = [], metadataOnly: Bool = false, routeOnly: Bool = false,
                domainsExcluded: DomainSet? = nil) {
        self.destOverride = destOverride
        self.metadataOnly = metadataOnly
        self.routeOnly = routeOnly
        self.domainsExcluded = domainsExcluded
    }
}

/// What a sniff result changes for one request: the protocol routing sees, the name routing sees,
/// and the destination the outbound connects to. Pure; the worker builds one per inbound.
public struct SniffingPolicy: Sendable {
    public let config: SniffingConfig
    private let excluded: DomainMatcher?

    /// The policy of an inbound's sniffing config; nil when nothing would be sniffed (absent, or
    /// metadataOnly: vmessd has no metadata sniffer).
    public static func make(_ config: SniffingConfig?) throws -> SniffingPolicy? {
        guard let config, !config.metadataOnly else { return nil }
        return try SniffingPolicy(config)
    }

    public init(_ config: SniffingConfig) throws {
        self.config = config
        excluded = try config.domainsExcluded.map(DomainMatcher.init)
    }

    public struct Outcome: Equatable, Sendable {
        public var sniffedProtocol: String?
        /// The name routing matches domain rules against (nil: the destination's own).
        public var routingDomain: String?
        /// The destination address to connect to (nil: unchanged).
        public var address: VMessAddress?
    }

    public func apply(_ result: SniffResult) -> Outcome {
        guard case .found(let name, let domain) = result else { return Outcome() }
        var outcome = Outcome(sniffedProtocol: name)
        guard let domain, config.destOverride.contains(where: { name.hasPrefix($0) || name.hasSuffix($0) }),
              let address = Self.address(domain) else { return outcome }
        if let excluded, case .domain = address, excluded.matches(Array(domain.utf8)) { return outcome }
        if config.routeOnly {
            if case .domain(let d) = address { outcome.routingDomain = d }
        } else {
            outcome.address = address
        }
        return outcome
    }

    /// A sniffed name as a destination: an IP literal, or a name of letters, digits, '-', '_' and
    /// '.' that fits a VMess/SOCKS address (255 bytes). Anything else (spaces, controls, non-ASCII
    /// from a hostile Host header) leaves the destination alone.
    static func address(_ name: String) -> VMessAddress? {
        if let ip = ipAddressBytes(name) { return ip.count == 4 ? .ipv4(ip) : .ipv6(ip) }
        let bytes = Array(name.utf8)
        guard (1...255).contains(bytes.count), bytes.allSatisfy(isNameByte) else { return nil }
        return .domain(name)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."): true
        default: false
        }
    }
}
