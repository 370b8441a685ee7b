// `dns`: v4 (v2fly infra/conf/dns.go, DNSConfig) and v5 (app/dns SimplifiedConfig read with
// protojson). Domain lists and `expectIPs` are read by routing's readers, so `geosite:`, `ext:` and
// `geoip:` mean the same here as in rules. What V2Ray has and vmessd does not (DNS over HTTPS or QUIC,
// fakedns, EDNS client subnet) is an error saying so, never ignored.

extension ConfigParser {
    /// V2Ray's and Xray's keys vmessd does not implement (Xray: system hosts, stale answers, parallel queries).
    static let unsupportedDNSKeys: Set<String> = ["clientIp", "fakedns", "fakeDns", "useSystemHosts", "serveStale",
                                                  "serveExpiredTTL", "enableParallelQuery"]
    static let unsupportedDNSServerKeys: Set<String> = ["clientIp", "clientIP", "fakedns", "fakeDns", "tag", "cacheStrategy",
                                                        "fallbackStrategy", "timeoutMs", "allowUnexpectedIPs",
                                                        "unexpectedIPs", "finalQuery", "serveStale", "serveExpiredTTL"]

    static func readDNSV4(_ node: ConfigNode, geodata: GeoDataCache) throws -> DNSConfig {
        var r = try node.object()
        var dns = DNSConfig()
        if let servers = r.take("servers") {
            dns.servers = try servers.array().map { try readDNSServerV4($0, geodata: geodata) }
        }
        if let hosts = r.take("hosts") {
            dns.hosts = try readDNSHostsV4(hosts, geodata: geodata)
        }
        if let strategy = r.take("queryStrategy") { dns.queryStrategy = try readDNSQueryStrategy(strategy) }
        dns.disableCache = try r.take("disableCache")?.bool() ?? false
        dns.disableFallback = try r.take("disableFallback")?.bool() ?? false
        dns.disableFallbackIfMatch = try r.take("disableFallbackIfMatch")?.bool() ?? false
        // V2Ray 5's v4 reader spells the switches as strategies too.
        if let cache = r.take("cacheStrategy") { try readDNSCacheStrategy(cache, &dns) }
        if let fallback = r.take("fallbackStrategy") { try readDNSFallbackStrategy(fallback, &dns) }
        if let tag = r.take("tag") { dns.tag = try nonEmptyTag(tag) }
        if let matcher = r.take("domainMatcher") { try checkDomainMatcher(matcher) }
        try r.finish(unsupported: unsupportedDNSKeys)
        return dns
    }

    /// A string (address) or {address, port, domains, expectIPs, skipFallback, queryStrategy}.
    static func readDNSServerV4(_ node: ConfigNode, geodata: GeoDataCache) throws -> DNSServerConfig {
        if case .string = node.value {
            return DNSServerConfig(address: try readDNSServerAddress(node, port: 0), jsonPath: node.path.description)
        }
        var r = try node.object()
        let addressNode = try r.require("address")
        let portNode = r.take("port")
        let port = try portNode?.int(0...65_535) ?? 0
        let address = try readDNSServerAddress(addressNode, port: port)
        if case .tcp = address, let portNode, port != 0 {
            throw portNode.error("a tcp:// server takes its port in the URL (\"tcp://1.1.1.1:53\")")
        }
        var server = DNSServerConfig(address: address, jsonPath: node.path.description)
        if let list = r.take("domains") {
            var set = DomainSet()
            for entry in try list.array() { set.formUnion(try readDomainEntryV4(entry, geodata: geodata)) }
            server.domains = set.count > 0 ? set : nil
        }
        // Go's JSON decoder matches keys case-insensitively; both spellings are in published configs.
        // Xray also spells it expectedIPs.
        let expect = [r.take("expectIPs"), r.take("expectIps"), r.take("expectedIPs")].compactMap { $0 }
        if expect.count > 1 { throw expect[1].error("expectIPs given twice (under two spellings)") }
        if let list = expect.first {
            server.expectIPs = nonEmpty(try readIPListV4(list, geodata: geodata))
        }
        server.skipFallback = try r.take("skipFallback")?.bool() ?? false
        if let strategy = r.take("queryStrategy") { server.queryStrategy = try readDNSQueryStrategy(strategy) }
        try r.finish(unsupported: unsupportedDNSServerKeys)
        return server
    }

    /// "localhost", or an IP address (port 0 means 53). DNS over HTTPS/QUIC/TCP, fakedns and servers
    /// given by name are V2Ray features vmessd does not have.
    static func readDNSServerAddress(_ node: ConfigNode, port: Int) throws -> DNSServerConfig.Address {
        let text = try node.string()
        if text.lowercased() == "localhost" { return .system }
        if let bytes = ipAddressBytes(text) { return .udp(address: bytes, port: UInt16(port == 0 ? 53 : port)) }
        let lower = text.lowercased()
        for (scheme, routed) in [("tcp://", true), ("tcp+local://", false)] where lower.hasPrefix(scheme) {
            let (address, port) = try readDNSServerURLAuthority(String(text.dropFirst(scheme.count)), node)
            return .tcp(address: address, port: port, routed: routed)
        }
        for scheme in ["https://", "https+local://", "quic+local://"] where lower.hasPrefix(scheme) {
            throw node.error("DNS server \(JSONC.quote(text)): \(JSONC.quote(String(scheme.dropLast(3)))) servers are not supported by vmessd yet")
        }
        if lower == "fakedns" { throw node.error("\"fakedns\" is not supported by vmessd yet") }
        if text.isEmpty { throw node.mismatch("an IP address or \"localhost\"") }
        throw node.error("DNS server \(JSONC.quote(text)): a server given by name is not supported by vmessd yet (use its IP address)")
    }

    /// "IP", "IP:port", "[IPv6]:port" (an optional trailing "/"), as a URL's authority; port 53 by default.
    static func readDNSServerURLAuthority(_ text: String, _ node: ConfigNode) throws -> ([UInt8], UInt16) {
        var rest = Substring(text)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        var host = rest
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw node.mismatch("a URL like \"tcp://[2001:db8::1]:53\"") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw node.mismatch("a URL like \"tcp://[2001:db8::1]:53\"") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":"), !rest[..<colon].contains(":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let address = ipAddressBytes(String(host)) else {
            throw node.error("DNS server \(node.shortDescription): a server given by name is not supported by vmessd yet (use its IP address)")
        }
        guard let portText else { return (address, 53) }
        guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portText), port != 0 else {
            throw node.mismatch("a URL with a port 1-65535")
        }
        return (address, port)
    }

    /// {"name": "IP" | ["IP", …] | "domain"}; keys `domain:`, `full:`, `keyword:`, `regexp:`,
    /// `geosite:`, `ext:` as in routing, a plain key is the exact name (unlike routing, where it is a
    /// substring). V2Ray sorts the keys; matches are combined in that order.
    static func readDNSHostsV4(_ node: ConfigNode, geodata: GeoDataCache) throws -> [DNSHostEntry] {
        var r = try node.object()
        let members = r.takeAll().sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        return try members.map { key, value in
            let keyNode = value.path.node(.string(key), value.file)
            let domains: DomainSet
            if ["domain:", "full:", "keyword:", "regexp:", "geosite:", "ext:", "dotless:", "ext-domain:"].contains(where: key.hasPrefix) {
                domains = try readDomainEntryV4(keyNode, geodata: geodata)
            } else {
                guard let name = hostName(key), let text = String(validating: name, as: UTF8.self) else {
                    throw keyNode.error("hosts: \(JSONC.quote(key)) is not a domain name")
                }
                var set = DomainSet()
                set.full = [text]
                domains = set
            }
            let values: [ConfigNode] = if case .array = value.value { try value.array() } else { [value] }
            return DNSHostEntry(domains: domains, target: try readDNSHostTarget(values, value))
        }
    }

    /// IP addresses, or one domain (the name to resolve instead); V2Ray takes the first domain of a list.
    static func readDNSHostTarget(_ values: [ConfigNode], _ node: ConfigNode) throws -> DNSHostEntry.Target {
        var addresses: [[UInt8]] = []
        for value in values {
            let text = try value.string()
            if let bytes = ipAddressBytes(text) {
                addresses.append(bytes)
            } else if hostName(text) != nil {
                return .domain(text)
            } else {
                throw value.mismatch("an IP address or a domain name")
            }
        }
        guard !addresses.isEmpty else { throw node.error("hosts: an entry needs an address") }
        return .addresses(addresses)
    }

    /// The normalised name if `text` is a host name (letters, digits, `-`, `_`, dots, DNS lengths):
    /// what a hosts entry may name. The wire allows any byte in a label; a config typo should not.
    static func hostName(_ text: String) -> [UInt8]? {
        guard let name = DNSQuestion.normalise(Array(text.utf8)) else { return nil }
        let allowed = { (b: UInt8) in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b)
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") || b == UInt8(ascii: ".")
        }
        return name.allSatisfy(allowed) ? name : nil
    }

    /// Case-insensitive with `_`/`-` variants, as v2fly reads it; anything else is UseIP there.
    static func readDNSQueryStrategy(_ node: ConfigNode) throws -> DNSConfig.QueryStrategy {
        let text = try node.string()
        switch String(text.lowercased().filter { $0 != "_" && $0 != "-" }) {
        case "useip": return .useIP
        case "useip4", "useipv4": return .useIPv4
        case "useip6", "useipv6": return .useIPv6
        default: throw node.mismatch("one of UseIP, UseIPv4, UseIPv6")
        }
    }

    static func readDNSCacheStrategy(_ node: ConfigNode, _ dns: inout DNSConfig) throws {
        switch try node.string().lowercased() {
        case "enabled", "cacheenabled": dns.disableCache = false
        case "disabled", "cachedisabled": dns.disableCache = true
        default: throw node.mismatch("\"enabled\" or \"disabled\"")
        }
    }

    static func readDNSFallbackStrategy(_ node: ConfigNode, _ dns: inout DNSConfig) throws {
        switch String(try node.string().lowercased().filter { $0 != "_" && $0 != "-" }) {
        case "enabled": (dns.disableFallback, dns.disableFallbackIfMatch) = (false, false)
        case "disabled": (dns.disableFallback, dns.disableFallbackIfMatch) = (true, false)
        case "disabledifanymatch": (dns.disableFallback, dns.disableFallbackIfMatch) = (false, true)
        default: throw node.mismatch("one of enabled, disabled, disabledIfAnyMatch")
        }
    }

    static func nonEmptyTag(_ node: ConfigNode) throws -> String? {
        let tag = try node.string()
        return tag.isEmpty ? nil : tag
    }

    /// V2Ray sends its DNS client's UDP (and `tcp://`) queries through routing (inbound tag `dns.tag`; no rule
    /// matching means the first outbound), and so does vmessd (DNSResolver.route). One route vmessd
    /// cannot follow: to a dns outbound with an `address` or `port` (V2Ray's passes its own client's
    /// queries on to that server instead; vmessd's would ask the original one), so it is an error.
    static func checkDNSQueryRouting(_ config: Config, _ node: ConfigNode) throws {
        guard let dns = config.dns else { return }
        let tags = config.outbounds.map(\.tag)
        for server in dns.servers {
            let address: [UInt8], port: UInt16, network: RouteNetwork
            switch server.address {
            case .udp(let a, let p): (address, port, network) = (a, p, .udp)
            case .tcp(let a, let p, true): (address, port, network) = (a, p, .tcp)
            case .tcp(_, _, false), .system: continue  // tcp+local and localhost are not routed
            }
            var picked: Set<Int> = [0]
            if let routing = config.routing {
                picked = []
                // Every candidate of a balancer counts: try each choice its random pick could make.
                for choice in 0..<max(1, tags.count) {
                    guard let router = try? Router(routing, outboundTags: tags, randomIndex: { min(choice, $0 - 1) }) else { return }
                    let request = RouteRequest(ip: address, port: port, network: network, inboundTag: dns.tag)
                    if case .outbound(let i) = router.route(request) { picked.insert(i) } else { picked.insert(0) }
                }
            }
            for i in picked.sorted() {
                let outbound = config.outbounds[i]
                guard case .dns(let d) = outbound.settings, d.address != nil || d.port != nil else { continue }
                let name = outbound.tag.map { JSONC.quote($0) } ?? outbound.jsonPath
                let text = ipAddressText(address).map { address.count == 16 ? "[\($0)]" : $0 } ?? "?"
                throw node.error("""
                    the DNS queries to \(text):\(port) (\(server.jsonPath)) are routed to dns outbound \(name), whose \
                    address/port override vmessd does not apply to the built-in DNS's own queries: not supported by vmessd yet
                    """)
            }
        }
    }
}

extension ConfigParser {
    /// v4 dns outbound `settings`: {network: tcp|udp, address, port, userLevel}.
    static func readDNSOutboundV4(_ node: ConfigNode?) throws -> DNSOutboundSettings {
        var settings = DNSOutboundSettings()
        guard let node else { return settings }
        var r = try node.object()
        if let network = r.take("network") {
            switch try network.string().lowercased() {
            case "": break
            case "tcp": settings.network = .tcp
            case "udp": settings.network = .udp
            default: throw network.mismatch("\"tcp\" or \"udp\"")
            }
        }
        if let address = r.take("address") {
            let text = try address.string()
            guard !text.isEmpty else { throw address.mismatch("an IP address or a domain name") }
            guard ipAddressBytes(text) != nil || hostName(text) != nil else { throw address.mismatch("an IP address or a domain name") }
            settings.address = text
        }
        if let port = r.take("port") {
            let value = try port.int(0...65_535)
            settings.port = value == 0 ? nil : UInt16(value)
        }
        // As for freedom: the inbound user's level governs the whole relay in vmessd.
        _ = try r.take("userLevel")?.int(levelRange)
        try r.finish()
        return settings
    }

    /// v5 dns outbound `settings` (SimplifiedConfig): {overrideResponseTtl, responseTtl}.
    static func readDNSOutboundV5(_ node: ConfigNode?) throws -> DNSOutboundSettings {
        var settings = DNSOutboundSettings()
        guard let node else { return settings }
        var r = try node.object(protoNames: true)
        let override = try r.take("overrideResponseTtl")?.bool() ?? false
        let ttl = try r.take("responseTtl")?.int(0...Int(Int32.max))
        try r.finish()
        if override { settings.responseTTL = UInt32(ttl ?? 0) }
        return settings
    }
}
