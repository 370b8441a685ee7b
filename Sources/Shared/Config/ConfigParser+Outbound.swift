// `outbounds[]`: freedom (direct connections), blackhole and vmess (the client, settings in
// ConfigParser+VMessOutbound). Stream transports and mux only exist on the vmess outbound; on the others
// they are accepted only in their "off" form. Proxy chains are not implemented.

extension ConfigParser {
    /// V2Ray outbound protocols vmessd knows but does not implement yet (others are "unknown").
    static let outboundProtocolsNotYet: Set<String> = [
        "socks", "http", "shadowsocks", "trojan", "vless", "loopback",
    ]

    static func readOutbounds(_ node: ConfigNode, format: ConfigFormat) throws -> [OutboundConfig] {
        var outbounds: [OutboundConfig] = []
        var tags: [String: String] = [:]
        var errors = ConfigErrorCollector()
        for item in try node.array() {
            guard let outbound = try errors.attempt({ try readOutbound(item, format: format) }) else { continue }
            if let tag = outbound.tag {
                if let first = tags[tag] {
                    _ = try errors.attempt {
                        throw item.path.appending(key: "tag").node(.string(tag), item.file)
                            .error("duplicate tag \(JSONC.quote(tag)) (also used by \(first))")
                    }
                    continue
                }
                tags[tag] = outbound.jsonPath
            }
            outbounds.append(outbound)
        }
        try errors.finish()
        try checkProxyChains(outbounds, node)
        return outbounds
    }

    /// `proxySettings` `{tag, transportLayer}`: only a vmess outbound is dialed through another.
    /// Without `transportLayer` V2Ray drops the outbound's own transport under a proxy; vmessd
    /// refuses a transport that would be dropped rather than ignoring it.
    static func readProxySettings(_ node: ConfigNode, protocolName: String, stream: StreamSettings,
                                  format: ConfigFormat) throws -> String? {
        var r = try node.object(protoNames: format == .v5)
        let tag = try r.take("tag")?.string() ?? ""
        let transportLayer = try r.take("transportLayer")?.bool() ?? false
        try r.finish()
        guard !tag.isEmpty else { return nil }
        guard protocolName == "vmess" || protocolName == "freedom" else {
            throw node.error("proxySettings has no effect on a \(protocolName) outbound")
        }
        if !transportLayer, stream.network != .tcp || stream.security != .none || stream.tcpHeader != nil {
            throw node.error("the outbound's streamSettings have no effect through proxySettings unless \"transportLayer\" is true")
        }
        // mKCP datagrams cannot ride another outbound's stream.
        if stream.network == .kcp {
            throw node.error("proxySettings cannot carry the kcp transport")
        }
        return tag
    }

    /// Every proxy tag names another outbound, and no chain comes back to where it started.
    static func checkProxyChains(_ outbounds: [OutboundConfig], _ node: ConfigNode) throws {
        let byTag = Dictionary(outbounds.enumerated().compactMap { i, o in o.tag.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        for (i, outbound) in outbounds.enumerated() {
            guard let first = outbound.proxyTag else { continue }
            let at = node.path.appending(index: i).appending(key: "proxySettings").node(.string(first), node.file)
            var seen: Set<Int> = [i]
            var tag: String? = first
            while let t = tag {
                guard let j = byTag[t] else { throw at.error("no outbound has tag \(JSONC.quote(t))") }
                guard seen.insert(j).inserted else {
                    throw at.error("proxySettings chain comes back to \(outbounds[j].jsonPath) (a loop)")
                }
                tag = outbounds[j].proxyTag
            }
        }
    }

    static func readOutbound(_ node: ConfigNode, format: ConfigFormat) throws -> OutboundConfig {
        var r = try node.object()
        let name = try readProtocol(r.require("protocol"), supported: ["freedom", "blackhole", "vmess", "dns"],
                                    notYet: outboundProtocolsNotYet)
        let tag = try r.take("tag").map(readTag) ?? nil
        let settingsNode = r.take("settings")
        // The sender's domain strategy (outbound level, both formats): for freedom it means the same as
        // freedom's own setting; two different non-default values contradict each other.
        let strategyNode = r.take("domainStrategy")
        let senderStrategy = try strategyNode.map(readDomainStrategy)
        var stream = StreamSettings()
        if let streamNode = r.take("streamSettings") {
            if name == "vmess" {
                stream = try readStream(streamNode, format: format, forInbound: false)
            } else {
                // Only the socket options mean something on an outbound that dials plain sockets.
                var s = try streamNode.object(protoNames: format == .v5)
                if format == .v4, let sockopt = s.take("sockopt") { stream.sockopt = try readSocketOptionsV4(sockopt) }
                if format == .v5, let socket = s.take("socketSettings") { stream.sockopt = try readSocketOptionsV5(socket) }
                if let key = s.untakenKeys.first {
                    throw streamNode.error("\(JSONC.quote(key)) has no effect on a \(name) outbound (its streamSettings can only hold socket options)")
                }
            }
        }
        var mux: MuxSettings?
        if let muxNode = r.take("mux") {
            mux = try readMux(muxNode, protocolName: name)
        }
        let sendThrough = try r.take("sendThrough").flatMap(readSendThrough)
        let proxyNode = r.take("proxySettings")
        let proxyTag = try proxyNode.flatMap { try readProxySettings($0, protocolName: name, stream: stream, format: format) }
        if let proxyNode, proxyTag != nil, sendThrough != nil || !stream.sockopt.isEmpty {
            throw proxyNode.error("sendThrough and sockopt have no effect on an outbound dialed through proxySettings (set them on the proxy's outbound)")
        }
        try r.finish()
        // The dialing socket's options belong to the outbound, whatever its protocol.
        let sockopt = stream.sockopt
        stream.sockopt = SocketOptions()

        let settings: OutboundSettings
        switch name {
        case "vmess":
            if let strategyNode, senderStrategy != .asIs {
                throw strategyNode.error("domainStrategy on a vmess outbound is not supported by vmessd yet")
            }
            guard let settingsNode else { throw node.error("missing required key \"settings\"") }
            var vmess = try readVMessOutbound(settingsNode, format: format)
            vmess.stream = stream
            vmess.mux = mux
            settings = .vmess(vmess)
        case "freedom":
            var freedom = try format == .v4 ? readFreedomV4(settingsNode) : readFreedomV5(settingsNode)
            if let strategyNode, let senderStrategy, senderStrategy != .asIs {
                guard freedom.domainStrategy == .asIs || freedom.domainStrategy == senderStrategy else {
                    throw strategyNode.error("domainStrategy contradicts settings.domainStrategy")
                }
                freedom.domainStrategy = senderStrategy
            }
            settings = .freedom(freedom)
        case "dns":
            if let strategyNode, senderStrategy != .asIs {
                throw strategyNode.error("domainStrategy has no effect on a dns outbound")
            }
            settings = .dns(try format == .v4 ? readDNSOutboundV4(settingsNode) : readDNSOutboundV5(settingsNode))
        default:
            if let strategyNode, senderStrategy != .asIs {
                throw strategyNode.error("domainStrategy has no effect on a blackhole outbound")
            }
            settings = .blackhole(try readBlackhole(settingsNode, format: format))
        }
        if let proxyNode, proxyTag != nil, case .freedom(let freedom) = settings, freedom.domainStrategy != .asIs {
            // The proxy gets the name; resolving it here first would be a second, different lookup.
            throw proxyNode.error("a freedom outbound dialed through proxySettings takes domainStrategy AsIs only")
        }
        var outbound = OutboundConfig(tag: tag, settings: settings, jsonPath: node.path.description)
        outbound.sendThrough = sendThrough
        outbound.sockopt = sockopt
        outbound.proxyTag = proxyTag
        return outbound
    }

    /// v4 freedom `settings`: {domainStrategy, redirect, userLevel, timeout}.
    static func readFreedomV4(_ node: ConfigNode?) throws -> FreedomSettings {
        var freedom = FreedomSettings()
        guard let node else { return freedom }
        var r = try node.object()
        if let strategy = r.take("domainStrategy") {
            freedom.domainStrategy = try readDomainStrategy(strategy)
        }
        if let redirect = r.take("redirect") {
            (freedom.redirectHost, freedom.redirectPort) = try readRedirect(redirect)
        }
        // userLevel picks the policy level of the outgoing side in V2Ray; vmessd applies the inbound
        // user's level to the whole relay, so a valid value is accepted and has no further effect.
        _ = try r.take("userLevel")?.int(levelRange)
        // timeout is deprecated in V2Ray itself (policy connIdle replaced it) and ignored there.
        _ = try r.take("timeout")?.int(levelRange)
        try r.finish()
        return freedom
    }

    /// v5 freedom `settings` (SimplifiedConfig) may only be empty here: destinationOverride and
    /// protocolReplacement are not implemented.
    static func readFreedomV5(_ node: ConfigNode?) throws -> FreedomSettings {
        if let node {
            try node.object(protoNames: true).finish(unsupported: ["destinationOverride", "protocolReplacement"])
        }
        return FreedomSettings()
    }

    /// V2Ray v4 accepts many spellings case-insensitively (UseIPv4, use_ip4, …) and silently falls back
    /// to AsIs for anything else; v5 wants exactly AsIs/UseIP/UseIP4/UseIP6. vmessd takes the common
    /// spellings of both, case-insensitively, and rejects the rest.
    static func readDomainStrategy(_ node: ConfigNode) throws -> FreedomSettings.DomainStrategy {
        switch try node.string().lowercased() {
        case "asis", "": return .asIs
        case "useip": return .useIP
        case "useipv4", "useip4": return .useIPv4
        case "useipv6", "useip6": return .useIPv6
        default: throw node.mismatch("one of AsIs, UseIP, UseIPv4, UseIPv6")
        }
    }

    /// "host:port" or "[v6]:port" (Go's net.SplitHostPort rules). An empty host keeps the original
    /// address and port 0 keeps the original port, as in V2Ray.
    static func readRedirect(_ node: ConfigNode) throws -> (host: String?, port: Int?) {
        let text = try node.string()
        let expected = "\"host:port\""
        guard let colon = text.lastIndex(of: ":") else { throw node.mismatch(expected) }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count >= 2 else { throw node.mismatch(expected) }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw node.mismatch(expected + " (put IPv6 addresses in brackets)")
        }
        guard let port = Int(portText), (0...65535).contains(port), portText.allSatisfy(\.isASCII) else {
            throw node.mismatch(expected + " with a port 0-65535")
        }
        return (host.isEmpty ? nil : host, port == 0 ? nil : port)
    }

    /// Blackhole `settings`: v4 {response: {type: none|http}}; v5's SimplifiedConfig has no fields.
    static func readBlackhole(_ node: ConfigNode?, format: ConfigFormat) throws -> BlackholeSettings {
        var blackhole = BlackholeSettings()
        guard let node else { return blackhole }
        var r = try node.object(protoNames: format == .v5)
        if format == .v4, let response = r.take("response") {
            var p = try response.object()
            if let type = p.take("type") {
                switch try type.string().lowercased() {
                case "none": blackhole.httpResponse = false
                case "http": blackhole.httpResponse = true
                default: throw type.mismatch("one of none, http")
                }
            }
            try p.finish()
        }
        try r.finish()
        return blackhole
    }
}
