// `dns`: v4 (v2fly infra/conf/dns.go, DNSConfig) and v5 (app/dns SimplifiedConfig read with
// protojson). Domain lists and `expectIPs` are read by routing's readers, so `geosite:`, `ext:` and
// `geoip:` mean the same here as in rules. What V2Ray has and vmessd does not (DNS over QUIC, fakedns,
// EDNS client subnet) is an error saying so, never ignored.

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
        if let portNode, port != 0 {
            switch address {
            case .tcp: throw portNode.error("a tcp:// server takes its port in the URL (\"tcp://1.1.1.1:53\")")
            case .https: throw portNode.error("an https:// server takes its port in the URL (\"https://1.1.1.1:8443/dns-query\")")
            case .udp, .system: break
            }
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

    /// "localhost", an IP address (port 0 means 53), `tcp://` / `tcp+local://` with an IP address, or
    /// `https://` / `https+local://` with an IP address or a name. DNS over QUIC, fakedns and UDP or
    /// TCP servers given by name are V2Ray features vmessd does not have.
    static func readDNSServerAddress(_ node: ConfigNode, port: Int) throws -> DNSServerConfig.Address {
        let text = try node.string()
        if text.lowercased() == "localhost" { return .system }
        if let bytes = ipAddressBytes(text) { return .udp(address: bytes, port: UInt16(port == 0 ? 53 : port)) }
        let lower = text.lowercased()
        for (scheme, routed) in [("tcp://", true), ("tcp+local://", false)] where lower.hasPrefix(scheme) {
            let (address, port) = try readDNSServerURLAuthority(String(text.dropFirst(scheme.count)), node)
            return .tcp(address: address, port: port, routed: routed)
        }
        for (scheme, routed) in [("https://", true), ("https+local://", false)] where lower.hasPrefix(scheme) {
            let (host, port, path) = try readDNSServerHTTPSURL(String(text.dropFirst(scheme.count)), node)
            return .https(host: host, port: port, path: path, routed: routed)
        }
        for scheme in ["quic+local://"] where lower.hasPrefix(scheme) {
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
        let (host, port) = try splitDNSServerURLAuthority(rest, defaultPort: 53, example: "tcp://[2001:db8::1]:53", node)
        guard let address = ipAddressBytes(String(host)) else {
            throw node.error("DNS server \(node.shortDescription): a server given by name is not supported by vmessd yet (use its IP address)")
        }
        return (address, port)
    }

    /// The rest of an `https://` URL: host (an IP address, IPv6 in brackets, or a name), an optional
    /// port (443 by default) and the path ("/" when there is none; a query stays with it), as V2Ray
    /// reads `https://dns.google/dns-query` or `https://1.1.1.1:8443/my-dns-query`.
    static func readDNSServerHTTPSURL(_ text: String, _ node: ConfigNode) throws -> (host: String, port: UInt16, path: String) {
        let authorityEnd = text.firstIndex { $0 == "/" || $0 == "?" } ?? text.endIndex
        let authority = text[..<authorityEnd]
        var path = String(text[authorityEnd...])
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        // The path goes into an HTTP/2 :path as is: printable ASCII without spaces, bounded.
        guard path.utf8.count <= 1024, path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), !path.contains("#") else {
            throw node.mismatch("an https:// URL whose path is printable ASCII without spaces or a fragment")
        }
        guard !authority.contains("@") else { throw node.error("DNS server \(node.shortDescription): a user in the URL is not supported") }
        let (host, port) = try splitDNSServerURLAuthority(authority, defaultPort: 443, example: "https://1.1.1.1/dns-query", node)
        let hostText = String(host)
        if ipAddressBytes(hostText) == nil {
            // A name: letters, digits, "-", "_" and dots, as DNS names go (no IDN: give its A-label).
            let labels = hostText.split(separator: ".", omittingEmptySubsequences: false)
            let valid = !hostText.isEmpty && hostText.utf8.count <= 253 && !host.hasPrefix(".")
                && labels.enumerated().allSatisfy { i, label in
                    (label.isEmpty && i == labels.count - 1 && i > 0)
                        || (1...63).contains(label.utf8.count)
                            && label.utf8.allSatisfy { $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
                }
            guard valid else { throw node.mismatch("an https:// URL with an IP address or a host name") }
        }
        return (hostText, port, path)
    }

    /// "host", "host:port" or "[IPv6]:port": the host text (brackets removed) and the port.
    static func splitDNSServerURLAuthority(_ rest: Substring, defaultPort: UInt16, example: String,
                                           _ node: ConfigNode) throws -> (Substring, UInt16) {
        var host = rest
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw node.mismatch("a URL like \"\(example)\"") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw node.mismatch("a URL like \"\(example)\"") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":"), !rest[..<colon].contains(":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard let portText else { return (host, defaultPort) }
        guard portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portText), port != 0 else {
            throw node.mismatch("a URL with a port 1-65535")
        }
        return (host, port)
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
            let request: RouteRequest
            switch server.address {
            case .udp(let a, let p): request = RouteRequest(ip: a, port: p, network: .udp, inboundTag: dns.tag)
            case .tcp(let a, let p, true): request = RouteRequest(ip: a, port: p, network: .tcp, inboundTag: dns.tag)
            case .https(let host, let p, _, true):
                let ip = ipAddressBytes(host)
                request = RouteRequest(domain: ip == nil ? host : nil, ip: ip, port: p, network: .tcp, inboundTag: dns.tag)
            case .tcp(_, _, false), .https(_, _, _, false), .system: continue  // the +local forms and localhost are not routed
            }
            var picked: Set<Int> = [0]
            if let routing = config.routing {
                picked = []
                // Every candidate of a balancer counts: try each choice its random pick could make.
                for choice in 0..<max(1, tags.count) {
                    guard let router = try? Router(routing, outboundTags: tags, randomIndex: { min(choice, $0 - 1) }) else { return }
                    var unresolved = request
                    unresolved.resolvedIPs = []  // as the worker routes a DoH server's name (no lookup of it)
                    if case .outbound(let i) = router.route(request) {
                        picked.insert(i)
                    } else if case .outbound(let i) = router.route(unresolved) {
                        picked.insert(i)
                    } else {
                        picked.insert(0)
                    }
                }
            }
            for i in picked.sorted() {
                let outbound = config.outbounds[i]
                if case .https(let host, _, _, _) = server.address, let ip = request.ip {
                    // Through a proxy the TLS session runs over a socket pair, whose peer address
                    // is no IP address the certificate could be checked against (NIOSSL verifies an
                    // IP-named server by the connected peer's address).
                    let direct: Bool
                    switch outbound.settings {
                    case .freedom(let f): direct = f.redirectHost == nil && f.redirectPort == nil
                    case .dns: direct = true
                    default: direct = false
                    }
                    if !direct {
                        let name = outbound.tag.map { JSONC.quote($0) } ?? outbound.jsonPath
                        let text = ip.count == 16 ? "[\(host)]" : host
                        throw node.error("""
                            DNS over HTTPS to an IP address (\(text), \(server.jsonPath)) through outbound \(name) is not \
                            supported by vmessd yet: name the server by its host name, or use https+local://
                            """)
                    }
                }
                guard case .dns(let d) = outbound.settings, d.address != nil || d.port != nil else { continue }
                let name = outbound.tag.map { JSONC.quote($0) } ?? outbound.jsonPath
                let text = request.ip.flatMap { ip in ipAddressText(ip).map { ip.count == 16 ? "[\($0)]" : $0 } } ?? request.domain ?? "?"
                throw node.error("""
                    the DNS queries to \(text):\(request.port) (\(server.jsonPath)) are routed to dns outbound \(name), whose \
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
