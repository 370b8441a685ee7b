// The validated routing model (v4 `routing`, v5 `router`). Geodata references (`geosite:`, `geoip:`,
// `ext:`) are already expanded into the rule's own lists here, so a worker receives exactly the domains
// and ranges its rules use and never reads a .dat file; `Router` compiles this into matchers.

public struct RoutingConfig: Codable, Equatable, Sendable {
    /// When the router may ask for the destination's addresses (see `Router.route`).
    public enum DomainStrategy: String, Codable, Sendable {
        /// Domains are matched as domains; IP conditions only see destinations given as IPs.
        case asIs = "AsIs"
        /// Match as given; if nothing matches a domain destination, resolve it and match again.
        case ipIfNonMatch = "IPIfNonMatch"
        /// Resolve a domain destination as soon as a rule with an IP condition is reached.
        case ipOnDemand = "IPOnDemand"
    }

    public var domainStrategy: DomainStrategy = .asIs
    public var rules: [RoutingRule] = []
    public var balancers: [RoutingBalancer] = []
    public init(domainStrategy: DomainStrategy = .asIs, rules: [RoutingRule] = [], balancers: [RoutingBalancer] = []) {
        self.domainStrategy = domainStrategy
        self.rules = rules
        self.balancers = balancers
    }
}

/// One rule: every condition present must hold (nil = no such condition); the first rule that holds
/// decides.
public struct RoutingRule: Codable, Equatable, Sendable {
    public enum Target: Codable, Equatable, Sendable {
        case outbound(String)
        case balancer(String)
    }

    public var target: Target
    public var domains: DomainSet?
    /// Destination IP: holds when any set holds (an inverse set holds for addresses outside it).
    public var ip: [IPSet]?
    public var ports: [PortRange]?
    public var networks: [RouteNetwork]?
    public var source: [IPSet]?
    public var sourcePorts: [PortRange]?
    /// User emails, compared exactly.
    public var users: [String]?
    public var inboundTags: [String]?
    /// Sniffed protocol names; a name matches a sniffed protocol it is a prefix of (as V2Ray does).
    public var protocols: [String]?
    /// Where the rule was written ("routing.rules[3]"), for logs.
    public var jsonPath: String

    public init(target: Target, jsonPath: String) {
        self.target = target
        self.jsonPath = jsonPath
    }

    /// Whether any condition is present (a rule with none is a config error, as in V2Ray).
    public var hasCondition: Bool {
        domains != nil || ip != nil || ports != nil || networks != nil || source != nil || sourcePorts != nil
            || users != nil || inboundTags != nil || protocols != nil
    }
}

/// Domain patterns grouped by kind (V2Ray's Domain.Type), lower-cased except regexes. Grouped rather
/// than one enum per entry because a geosite tag can hold tens of thousands of them and the model is
/// encoded for every worker.
public struct DomainSet: Codable, Equatable, Sendable {
    /// Substring (`keyword:` and plain entries).
    public var substrings: [String] = []
    /// `regexp:`, searched anywhere in the domain (unanchored, like Go's MatchString).
    public var regexes: [String] = []
    /// `domain:`: the domain itself or any subdomain.
    public var rootDomains: [String] = []
    /// `full:`: exactly this domain.
    public var full: [String] = []
    public init() {}

    public var count: Int { substrings.count + regexes.count + rootDomains.count + full.count }

    public mutating func formUnion(_ other: DomainSet) {
        substrings += other.substrings
        regexes += other.regexes
        rootDomains += other.rootDomains
        full += other.full
    }
}

/// A set of CIDR blocks, or its complement (`geoip:!cn`).
public struct IPSet: Codable, Equatable, Sendable {
    public var cidrs: [CIDR]
    public var inverse: Bool
    public init(cidrs: [CIDR], inverse: Bool = false) {
        self.cidrs = cidrs
        self.inverse = inverse
    }
}

public struct CIDR: Codable, Equatable, Hashable, Sendable {
    /// 4 or 16 bytes.
    public var address: [UInt8]
    /// 0...32 or 0...128.
    public var prefix: Int
    public init(address: [UInt8], prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    // Encoded as "1.0.1.0/24": a geoip:cn rule carries ~10,000 blocks to every worker, and the text
    // form is a third of the size of {"address": [1,0,1,0], "prefix": 24} and decodes faster.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let cidr = cidrFromText(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a CIDR: \(text)")
        }
        self = cidr
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        guard let text = ipAddressText(address) else {
            throw EncodingError.invalidValue(address, .init(codingPath: encoder.codingPath, debugDescription: "address of \(address.count) bytes"))
        }
        try container.encode("\(text)/\(prefix)")
    }
}

public struct PortRange: Codable, Equatable, Sendable {
    public var from: UInt16
    public var to: UInt16
    public init(_ from: UInt16, _ to: UInt16) {
        self.from = from
        self.to = to
    }
}

/// `balancers[]` / v5 `balancingRule[]`: picks at random among the outbounds whose tag starts with one
/// of `selectors`; `fallbackTag` when none does.
public struct RoutingBalancer: Codable, Equatable, Sendable {
    public var tag: String
    public var selectors: [String]
    public var fallbackTag: String?
    public var jsonPath: String
    public init(tag: String, selectors: [String], fallbackTag: String? = nil, jsonPath: String) {
        self.tag = tag
        self.selectors = selectors
        self.fallbackTag = fallbackTag
        self.jsonPath = jsonPath
    }
}
