// `inbounds[]`: the parts both formats share (port, listen, protocol, tag, sniffing, allocate, stream),
// plus the checks across inbounds (unique tags, one inbound per address and port). The protocol
// settings differ per format and live in ConfigParser+V4 / ConfigParser+V5.

extension ConfigParser {
    /// V2Ray inbound protocols vmessd knows but does not serve yet (others are "unknown").
    static let inboundProtocolsNotYet: Set<String> = ["shadowsocks", "trojan", "vless"]

    static func readInbounds(_ node: ConfigNode, format: ConfigFormat, geodata: GeoDataCache) throws -> [InboundConfig] {
        var inbounds: [InboundConfig] = []
        var tags: [String: String] = [:]  // tag → JSON path of its first use
        var endpoints: [String: String] = [:]  // "listen port" → JSON path
        var errors = ConfigErrorCollector()
        for item in try node.array() {
            // One inbound per port of a range or list: each is its own socket group.
            guard let expanded = try errors.attempt({ try readInbound(item, format: format, geodata: geodata) }) else { continue }
            if let tag = expanded[0].tag {
                if let first = tags[tag] {
                    throw item.path.appending(key: "tag").node(.string(tag), item.file)
                        .error("duplicate tag \(JSONC.quote(tag)) (also used by \(first))")
                }
                tags[tag] = expanded[0].jsonPath
            }
            for inbound in expanded {
                // Two inbounds on one address would share one SO_REUSEPORT socket group and split its
                // connections between two configurations; that is never intended.
                let endpoint = "\(inbound.listen) \(inbound.port)"
                if let first = endpoints[endpoint] {
                    if inbound.unixSocket != nil {
                        throw item.path.appending(key: "listen").node(.string(inbound.listen), item.file)
                            .error("Unix socket \(inbound.listen) is already used by \(first)")
                    }
                    throw item.path.appending(key: "port").node(.number(String(inbound.port)), item.file)
                        .error("port \(inbound.port) on \(inbound.listen) is already used by \(first)")
                }
                endpoints[endpoint] = inbound.jsonPath
                inbounds.append(inbound)
            }
        }
        try errors.finish()
        return inbounds
    }

    static func readInbound(_ node: ConfigNode, format: ConfigFormat, geodata: GeoDataCache) throws -> [InboundConfig] {
        var r = try node.object()
        // The parts are independent: each is read even when another failed, to report every error.
        var errors = ConfigErrorCollector()
        let name = try errors.attempt {
            try readProtocol(r.require("protocol"), supported: ["vmess", "socks", "http", "dokodemo-door"],
                             notYet: inboundProtocolsNotYet)
        }
        let listenNode = r.take("listen")
        let portNode = r.take("port")
        // A Unix socket has no port: V2Ray drops the key (and a range would mean one socket many
        // times), so it may be absent, and a present one is not used.
        let isUnix = listenNode.map { if case .string(let text) = $0.value { UnixListenAddress.isUnixSocket(text) } else { false } } ?? false
        let unixSocket = try errors.attempt { try listenNode.flatMap(readUnixListen) }
        let ports = try errors.attempt { try isUnix ? [0] : readPorts(portNode ?? r.require("port")) }
        let listen = try errors.attempt { () -> String in
            if let unix = unixSocket ?? nil { return unix.description }
            return isUnix ? "" : try listenNode.map(readListen) ?? "0.0.0.0"
        }
        let tag = try errors.attempt { try r.take("tag").map(readTag) ?? nil }
        let settingsNode = r.take("settings")
        let settings = try errors.attempt { () -> InboundSettings? in
            switch name {
            case "socks": return .socks(try readSocksInbound(settingsNode, format: format))
            case "http": return .http(try readHTTPInbound(settingsNode, format: format))
            case "dokodemo-door":
                guard let settingsNode else { throw r.missing("settings") }
                return .dokodemo(try readDokodemo(settingsNode, format: format))
            case "vmess":
                guard let settings = settingsNode else { throw r.missing("settings") }
                return .vmess(try format == .v4 ? readVMessInboundV4(settings) : readVMessInboundV5(settings))
            default: return nil  // the protocol was the error
            }
        } ?? nil
        let stream = try errors.attempt { try r.take("streamSettings").map { try readStream($0, format: format) } ?? StreamSettings() }
        let sniffing = try errors.attempt { try r.take("sniffing").flatMap { try readSniffing($0, geodata: geodata) } }
        var allocation: PortAllocation?
        if format == .v4, let allocate = r.take("allocate") {
            allocation = try errors.attempt { try readAllocate(allocate) } ?? nil
        }
        _ = try errors.attempt { try r.finish(unsupported: ["domainOverride"]) }
        try errors.finish()
        guard let ports, let listen, let tag, let settings, let stream, let sniffing else {
            preconditionFailure("every part was read without an error")
        }
        if let unix = unixSocket ?? nil {
            try checkUnixInbound(node, unix: unix, settings: settings, stream: stream, allocation: allocation)
        }
        if let allocation, allocation.concurrency > ports.count {
            throw node.error("allocate concurrency \(allocation.concurrency) is more than the \(ports.count) port(s) the inbound has")
        }
        return ports.map { port in
            var inbound = InboundConfig(tag: tag, listen: listen, port: port, settings: settings, stream: stream,
                                        sniffing: sniffing, jsonPath: node.path.description)
            inbound.allocation = allocation
            inbound.unixSocket = unixSocket ?? nil
            return inbound
        }
    }

    /// Protocol names are matched case-insensitively, as V2Ray v4 lower-cases them before lookup.
    static func readProtocol(_ node: ConfigNode, supported: Set<String>, notYet: Set<String>) throws -> String {
        let name = try node.string()
        let key = name.lowercased()
        if supported.contains(key) { return key }
        if notYet.contains(key) { throw node.error("protocol \(JSONC.quote(name)) is not supported yet") }
        throw node.error("unknown protocol \(JSONC.quote(name))")
    }

    /// Most ports one inbound may listen on: each is a socket per worker, and a range of thousands
    /// would exhaust the descriptor limit rather than serve anything.
    static let maximumPortsPerInbound = 256

    /// An integer 1…65535, or a string holding one, a range or a list (V2Ray's PortRange and
    /// PortList: "10000-10010", "80,443,8000-8003"); listening on every port given (allocate
    /// strategy "always"). Ports in order, each once.
    static func readPorts(_ node: ConfigNode) throws -> [Int] {
        let expected = "an integer 1-65535"
        guard case .string(let text) = node.value else { return [try node.int(1...65535)] }
        if let port = Int(text) {
            guard (1...65535).contains(port) else { throw node.mismatch(expected) }
            return [port]
        }
        let listCharacters = Set("0123456789-, ")
        guard text.contains(where: { $0 == "-" || $0 == "," }), text.allSatisfy(listCharacters.contains) else {
            throw node.mismatch(expected)
        }
        var ports: [Int] = []
        var seen = Set<Int>()
        for range in try parsePortList(text, node) {
            guard range.from >= 1 else { throw node.error("port 0 in \(JSONC.quote(text)) (ports are 1-65535)") }
            guard Int(range.to) - Int(range.from) + 1 + ports.count <= maximumPortsPerInbound else {
                throw node.error("\(JSONC.quote(text)) names more than \(maximumPortsPerInbound) ports")
            }
            for port in Int(range.from)...Int(range.to) where seen.insert(port).inserted { ports.append(port) }
        }
        return ports
    }

    /// An IPv4 or IPv6 literal, stored in canonical form (Unix sockets: `readUnixListen`).
    static func readListen(_ node: ConfigNode) throws -> String {
        let text = try node.string()
        guard let address = canonicalIPAddress(text) else {
            throw node.mismatch("an IP address literal, a Unix socket path (\"/path\", \"/path,0666\") or an abstract name (\"@name\", \"@@name\")")
        }
        return address
    }

    /// `listen` as a Unix socket (UnixListenAddress); nil when it is an IP address.
    static func readUnixListen(_ node: ConfigNode) throws -> UnixListenAddress? {
        guard case .string(let text) = node.value, UnixListenAddress.isUnixSocket(text) else { return nil }
        do {
            return try UnixListenAddress(parsing: text)
        } catch {
            throw node.error(error.description)
        }
    }

    /// What cannot go with a Unix socket listener: TCP-level socket options (there is no TCP), UDP
    /// (dokodemo-door's or SOCKS's UDP needs an IP address), and port allocation.
    static func checkUnixInbound(_ node: ConfigNode, unix: UnixListenAddress, settings: InboundSettings,
                                 stream: StreamSettings, allocation: PortAllocation?) throws {
        let why = "cannot be used with a Unix socket listen address (\(unix))"
        if allocation != nil { throw node.error("\"allocate\" \(why)") }
        // V2Ray applies no socket option to a Unix listener at all; naming one is a mistake to report.
        if !stream.sockopt.isEmpty { throw node.error("socket options (sockopt / socketSettings) \(why)") }
        switch settings {
        case .dokodemo(let d) where d.udp:
            throw node.error("dokodemo-door network \"udp\" \(why)")
        case .socks(let s) where s.udp:
            throw node.error("socks \"udp\": true \(why)")
        default: break
        }
    }

    /// "" means "no tag" in V2Ray.
    static func readTag(_ node: ConfigNode) throws -> String? {
        let tag = try node.string()
        return tag.isEmpty ? nil : tag
    }

    /// `sniffing` (same keys in v4 and v5, plus Xray's `routeOnly`/`domainsExcluded`): nil when it is
    /// absent or disabled.
    static func readSniffing(_ node: ConfigNode, geodata: GeoDataCache) throws -> SniffingConfig? {
        var r = try node.object()
        guard try r.take("enabled")?.bool() == true else {
            // Disabled: the other keys have no effect (a "quic" there is harmless).
            r.ignore("destOverride", "metadataOnly", "routeOnly", "domainsExcluded")
            try r.finish()
            return nil
        }
        var config = SniffingConfig()
        if let list = r.take("destOverride") {
            for entry in try list.array() {
                let name = try entry.string().lowercased()
                switch name {
                case "http", "tls": config.destOverride.append(name)
                case "quic", "fakedns", "fakedns+others":
                    throw entry.error("sniffing \(JSONC.quote(name)) is not supported by vmessd yet (it sniffs \"http\" and \"tls\")")
                default:
                    throw entry.mismatch("\"http\" or \"tls\"")
                }
            }
        }
        if let flag = r.take("metadataOnly") { config.metadataOnly = try flag.bool() }
        if let flag = r.take("routeOnly") { config.routeOnly = try flag.bool() }
        if let list = r.take("domainsExcluded") {
            // Xray compares a plain entry with the whole name and knows "regexp:"; the routing
            // prefixes (full:, domain:, keyword:, geosite:) mean here what they mean in rules.
            var set = DomainSet()
            for entry in try list.array() {
                let text = try entry.string()
                if text.contains(":") {
                    set.formUnion(try readDomainEntryV4(entry, geodata: geodata))
                } else if !text.isEmpty {
                    set.full.append(text.lowercased())
                }
            }
            config.domainsExcluded = set.count > 0 ? set : nil
        }
        try r.finish()
        return config
    }

    /// v4 `allocate` {strategy: "always" | "random", refresh: minutes (default 5), concurrency:
    /// ports at a time (default 3)}: nil for "always" (every port listens all the time).
    static func readAllocate(_ node: ConfigNode) throws -> PortAllocation? {
        var r = try node.object()
        let strategy = try r.take("strategy")?.string().lowercased() ?? "always"
        let refresh = try r.take("refresh")?.int(1...1440) ?? 5
        let concurrency = try r.take("concurrency")?.int(1...256) ?? 3
        try r.finish()
        switch strategy {
        case "always": return nil
        case "random": return PortAllocation(refreshMinutes: refresh, concurrency: concurrency)
        default: throw node.error("allocate strategy \(JSONC.quote(strategy)) is unknown (\"always\" or \"random\")")
        }
    }
}
