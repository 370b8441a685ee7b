// v5 `dns`: v2fly's app/dns SimplifiedConfig read with protojson (lowerCamel or proto field names,
// enums by name or number):
//
//   {nameServer: [{address: {address: "1.1.1.1" | "localhost", port, network?: udp},
//                  prioritizedDomain: [{type: Full|Subdomain|Keyword|Regex, domain}],
//                  geoDomain: [{code, filePath?} | {domain: [...]}], geoip: [...], originalRules,
//                  skipFallback, queryStrategy}],
//    staticHosts: [{type, domain, ip: ["1.2.3.4"], proxiedDomain}],
//    queryStrategy: UseIp|UseIp4|UseIp6 (USE_IP…), cacheStrategy, fallbackStrategy,
//    disableCache, disableFallback, disableFallbackIfMatch, tag, domainMatcher}

extension ConfigParser {
    static func readDNSV5(_ node: ConfigNode, geodata: GeoDataCache) throws -> DNSConfig {
        var r = try node.object(protoNames: true)
        var dns = DNSConfig()
        if let servers = r.take("nameServer") {
            dns.servers = try servers.array().map { try readDNSServerV5($0, geodata: geodata) }
        }
        if let hosts = r.take("staticHosts") {
            dns.hosts = try hosts.array().map { try readStaticHostV5($0) }
        }
        if let strategy = r.take("queryStrategy") { dns.queryStrategy = try readDNSQueryStrategyV5(strategy) }
        dns.disableCache = try r.take("disableCache")?.bool() ?? false
        dns.disableFallback = try r.take("disableFallback")?.bool() ?? false
        dns.disableFallbackIfMatch = try r.take("disableFallbackIfMatch")?.bool() ?? false
        if let cache = r.take("cacheStrategy") {
            dns.disableCache = try readV5Enum(cache, ["CacheEnabled", "CacheDisabled"], [false, true])
        }
        if let fallback = r.take("fallbackStrategy") {
            (dns.disableFallback, dns.disableFallbackIfMatch) = try readV5Enum(
                fallback, ["Enabled", "Disabled", "DisabledIfAnyMatch"], [(false, false), (true, false), (false, true)])
        }
        if let tag = r.take("tag") { dns.tag = try nonEmptyTag(tag) }
        if let matcher = r.take("domainMatcher") { try checkDomainMatcher(matcher) }
        try r.finish(unsupported: unsupportedDNSKeys)
        return dns
    }

    static func readDNSQueryStrategyV5(_ node: ConfigNode) throws -> DNSConfig.QueryStrategy {
        try readV5Enum(node, ["USE_IP", "USE_IP4", "USE_IP6"], [.useIP, .useIPv4, .useIPv6])
    }

    static func readDNSServerV5(_ node: ConfigNode, geodata: GeoDataCache) throws -> DNSServerConfig {
        var r = try node.object(protoNames: true)
        let endpointNode = try r.require("address")
        var endpoint = try endpointNode.object(protoNames: true)
        let addressNode = try endpoint.require("address")
        let port = try endpoint.take("port")?.int(0...65_535) ?? 0
        if let network = endpoint.take("network") {
            // net.Network: Unknown = 0, RawTCP = 1, TCP = 2, UDP = 3, UNIX = 4.
            let udp = try readV5Enum(network, ["Unknown", "RawTCP", "TCP", "UDP", "UNIX"], [true, false, false, true, false])
            guard udp else { throw network.error("DNS over TCP servers are not supported by vmessd yet") }
        }
        try endpoint.finish()
        var server = DNSServerConfig(address: try readDNSServerAddress(addressNode, port: port), jsonPath: node.path.description)
        var domains = DomainSet()
        for entry in try r.take("prioritizedDomain")?.array() ?? [] { domains.formUnion(try readDNSDomainV5(entry)) }
        for entry in try r.take("geoDomain")?.array() ?? [] { domains.formUnion(try readGeoDomainV5(entry, geodata: geodata)) }
        server.domains = domains.count > 0 ? domains : nil
        if let list = r.take("geoip") { server.expectIPs = nonEmpty(try list.array().map { try readGeoIPV5($0, geodata: geodata) }) }
        // Names of the rules for V2Ray's logs; no effect on matching.
        r.ignore("originalRules")
        server.skipFallback = try r.take("skipFallback")?.bool() ?? false
        if let strategy = r.take("queryStrategy") { server.queryStrategy = try readDNSQueryStrategyV5(strategy) }
        try r.finish(unsupported: unsupportedDNSServerKeys)
        return server
    }

    /// {type: Full (default) | Subdomain | Keyword | Regex, domain}: app/dns DomainMatchingType, whose
    /// names differ from routing's.
    static func readDNSDomainV5(_ node: ConfigNode) throws -> DomainSet {
        var r = try node.object(protoNames: true)
        let set = try readDNSDomainV5(&r, node)
        try r.finish()
        return set
    }

    /// The `type` and `domain` members of a PriorityDomain or HostMapping being read by `r`.
    static func readDNSDomainV5(_ r: inout ObjectReader, _ node: ConfigNode) throws -> DomainSet {
        enum Kind { case full, subdomain, keyword, regex }
        let kind = try r.take("type").map {
            try readV5Enum($0, ["Full", "Subdomain", "Keyword", "Regex"], [Kind.full, .subdomain, .keyword, .regex])
        } ?? .full
        let valueNode = try r.require("domain")
        let value = try valueNode.string()
        guard !value.isEmpty else { throw valueNode.error("empty domain pattern") }
        var set = DomainSet()
        switch kind {
        case .full: set.full = [value.lowercased()]
        case .subdomain: set.rootDomains = [value.lowercased()]
        case .keyword: set.substrings = [value.lowercased()]
        case .regex:
            try checkRegex(value, valueNode)
            set.regexes = [value]
        }
        return set
    }

    /// {type, domain, ip: [addresses] | proxiedDomain}.
    static func readStaticHostV5(_ node: ConfigNode) throws -> DNSHostEntry {
        var r = try node.object(protoNames: true)
        let domains = try readDNSDomainV5(&r, node)
        let ips = r.take("ip")
        let proxied = r.take("proxiedDomain")
        try r.finish()
        switch (ips, proxied) {
        case (let ips?, nil):
            let addresses = try ips.array().map { entry -> [UInt8] in
                guard let bytes = ipAddressBytes(try entry.string()) else { throw entry.mismatch("an IP address") }
                return bytes
            }
            guard !addresses.isEmpty else { throw ips.error("hosts: an entry needs an address") }
            return DNSHostEntry(domains: domains, target: .addresses(addresses))
        case (nil, let proxied?):
            let text = try proxied.string()
            guard hostName(text) != nil else { throw proxied.mismatch("a domain name") }
            return DNSHostEntry(domains: domains, target: .domain(text))
        case (_?, _?): throw node.error("a static host has \"ip\" or \"proxiedDomain\", not both")
        case (nil, nil): throw node.error("a static host needs \"ip\" or \"proxiedDomain\"")
        }
    }
}
