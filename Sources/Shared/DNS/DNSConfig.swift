// The validated `dns` section (v4 `dns`, v5 `dns`), geodata already expanded like routing's, so a
// worker builds its resolver from this alone. Semantics follow V2Ray 4.x app/dns.

public struct DNSConfig: Codable, Equatable, Sendable {
    /// Which address families a lookup asks for (`queryStrategy`).
    public enum QueryStrategy: String, Codable, Sendable {
        case useIP = "UseIP", useIPv4 = "UseIPv4", useIPv6 = "UseIPv6"
    }

    /// In order; empty means the system resolver alone (V2Ray adds `localhost` then).
    public var servers: [DNSServerConfig] = []
    /// `hosts`, in V2Ray's order (keys sorted); every entry that matches contributes.
    public var hosts: [DNSHostEntry] = []
    public var queryStrategy: QueryStrategy = .useIP
    public var disableCache = false
    /// Only servers whose `domains` match are asked (or the first server when none does).
    public var disableFallback = false
    /// Like `disableFallback`, but only when some server's `domains` matched.
    public var disableFallbackIfMatch = false
    /// The tag V2Ray gives the DNS client's own queries (for routing them); see ConfigParser+DNS.
    public var tag: String?

    public init() {}
}

public struct DNSServerConfig: Codable, Equatable, Sendable {
    public enum Address: Codable, Equatable, Sendable {
        /// `"localhost"`: the system resolver (getaddrinfo).
        case system
        /// Classic DNS over UDP (TCP when an answer is truncated), 4 or 16 address bytes.
        case udp(address: [UInt8], port: UInt16)
        /// DNS over TCP only (`tcp://` routed like the UDP queries, `tcp+local://` always direct).
        case tcp(address: [UInt8], port: UInt16, routed: Bool)
        /// DNS over HTTPS (RFC 8484: POST, `application/dns-message`, over HTTP/2 and TLS): `https://`
        /// routed like the UDP queries, `https+local://` always direct. `host` is an IP address
        /// (without brackets) or a name, which the system resolver looks up and the certificate must
        /// match; `path` starts with "/" and may carry a query.
        case https(host: String, port: UInt16, path: String, routed: Bool)
    }

    public var address: Address
    /// Names this server is asked first for; nil: none.
    public var domains: DomainSet?
    /// Only these addresses are accepted from this server; none left moves on to the next server.
    public var expectIPs: [IPSet]?
    /// Never asked as a fallback, only for its `domains`.
    public var skipFallback = false
    /// v5 per-server `queryStrategy`; nil: the section's.
    public var queryStrategy: DNSConfig.QueryStrategy?
    /// "dns.servers[1]", for logs.
    public var jsonPath: String

    public init(address: Address, jsonPath: String) {
        self.address = address
        self.jsonPath = jsonPath
    }
}

/// One `hosts` entry: names and what they map to.
public struct DNSHostEntry: Codable, Equatable, Sendable {
    public enum Target: Codable, Equatable, Sendable {
        /// 4 or 16 bytes each.
        case addresses([[UInt8]])
        /// Resolve this name instead (V2Ray's "proxied domain").
        case domain(String)
    }

    public var domains: DomainSet
    public var target: Target
    public init(domains: DomainSet, target: Target) {
        self.domains = domains
        self.target = target
    }
}

/// The `dns` outbound: answers A/AAAA queries routed to it with the built-in resolver and forwards
/// the rest, to `address`/`port`/`network` where given (v4 `settings.{network, address, port}`),
/// else to where the client sent them.
public struct DNSOutboundSettings: Codable, Equatable, Sendable {
    public enum Network: String, Codable, Sendable { case tcp, udp }
    public var network: Network?
    /// An IP address or a domain name.
    public var address: String?
    public var port: UInt16?
    /// TTL of the records it answers with (V2Ray: 600 s; v5 `responseTtl` with `overrideResponseTtl`).
    public var responseTTL: UInt32 = 600
    public init() {}
}
