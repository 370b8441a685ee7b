// v5 `router`: v2fly's app/router SimplifiedConfig read with protojson (lowerCamel or proto field
// names, enums by name or number):
//
//   {domainStrategy: AsIs|UseIp|IpIfNonMatch|IpOnDemand,
//    rule: [{tag | balancingTag,
//            domain: [{type: Plain|Regex|RootDomain|Full, value}],
//            geoDomain: [{code: "cn" | "google@ads", filePath?} | {domain: [...]}],
//            geoip: [{code, filePath?, inverseMatch?} | {cidr: [{ipAddr, prefix}], inverseMatch?}],
//            portList: "53,443,1000-2000", networks: "tcp,udp" | ["tcp"], sourceGeoip: [...],
//            sourcePortList, userEmail: [], inboundTag: [], protocol: [], domainMatcher}],
//    balancingRule: [{tag, outboundSelector: [], strategy: "random", fallbackTag}]}

extension ConfigParser {
    /// `apiTag`: the commander's tag (ConfigParser+ServicesV5), a valid rule target though no outbound has it.
    static func readRouterV5(_ node: ConfigNode, outbounds: [OutboundConfig], apiTag: String? = nil,
                             geodata: GeoDataCache) throws -> RoutingConfig {
        var r = try node.object(protoNames: true)
        var routing = RoutingConfig()
        if let strategy = r.take("domainStrategy") {
            routing.domainStrategy = try readV5Enum(strategy, ["AsIs", "UseIp", "IpIfNonMatch", "IpOnDemand"],
                                                    [.asIs, .asIs, .ipIfNonMatch, .ipOnDemand])
        }
        var targets = RoutingTargets(outboundTags: Set(outbounds.compactMap(\.tag)))
        if let balancers = r.take("balancingRule") {
            routing.balancers = try balancers.array().map { try readBalancingRuleV5($0, &targets) }
        }
        // After the balancers: a balancer selecting the API would send traffic into it.
        if let apiTag { targets.outboundTags.insert(apiTag) }
        var errors = ConfigErrorCollector()
        if let rules = r.take("rule") {
            routing.rules = try rules.array().compactMap { rule in try errors.attempt { try readRuleV5(rule, targets, geodata: geodata) } }
        }
        _ = try errors.attempt { try r.finish() }
        try errors.finish()
        return routing
    }

    /// A protojson enum: its name, or its number.
    static func readV5Enum<T>(_ node: ConfigNode, _ names: [String], _ values: [T]) throws -> T {
        switch node.value {
        case .string(let text):
            if let i = names.firstIndex(of: text) { return values[i] }
        case .number:
            return values[try node.int(0...(names.count - 1))]
        default: break
        }
        throw node.mismatch("one of \(names.joined(separator: ", "))")
    }

    static func readBalancingRuleV5(_ node: ConfigNode, _ targets: inout RoutingTargets) throws -> RoutingBalancer {
        var r = try node.object(protoNames: true)
        let tagNode = try r.require("tag")
        let tag = try tagNode.string()
        guard !tag.isEmpty else { throw tagNode.error("a balancer needs a non-empty tag") }
        let selectorNode = try r.require("outboundSelector")
        let selectors = try selectorNode.strings()
        guard !selectors.isEmpty else { throw selectorNode.error("a balancer needs at least one selector") }
        if let strategy = r.take("strategy") { try checkBalancingStrategy(strategy) }
        let fallbackNode = r.take("fallbackTag")
        let fallback = try fallbackNode?.string()
        try r.finish(unsupported: ["strategySettings"])
        let balancer = RoutingBalancer(tag: tag, selectors: selectors, fallbackTag: fallback?.isEmpty == true ? nil : fallback,
                                       jsonPath: node.path.description)
        try checkBalancer(balancer, tag: tagNode, selector: selectorNode, fallback: fallbackNode, &targets)
        return balancer
    }

    static func readRuleV5(_ node: ConfigNode, _ targets: RoutingTargets, geodata: GeoDataCache) throws -> RoutingRule {
        var r = try node.object(protoNames: true)
        let target = try readRuleTarget(node, &r, outboundKey: "tag", balancerKey: "balancingTag", targets)
        var rule = RoutingRule(target: target, jsonPath: node.path.description)
        var domains = DomainSet()
        for entry in try r.take("domain")?.array() ?? [] { domains.formUnion(try readDomainV5(entry)) }
        for entry in try r.take("geoDomain")?.array() ?? [] { domains.formUnion(try readGeoDomainV5(entry, geodata: geodata)) }
        // Empty lists and strings are no condition, as in V2Ray.
        rule.domains = domains.count > 0 ? domains : nil
        if let list = r.take("geoip") { rule.ip = nonEmpty(try list.array().map { try readGeoIPV5($0, geodata: geodata) }) }
        if let list = r.take("sourceGeoip") { rule.source = nonEmpty(try list.array().map { try readGeoIPV5($0, geodata: geodata) }) }
        if let ports = r.take("portList"), ports.value != .string("") { rule.ports = try readPortListV5(ports) }
        if let ports = r.take("sourcePortList"), ports.value != .string("") { rule.sourcePorts = try readPortListV5(ports) }
        if let networks = r.take("networks") { rule.networks = nonEmpty(try readNetworks(networks)) }
        if let users = r.take("userEmail") { rule.users = nonEmpty(try users.strings()) }
        if let tags = r.take("inboundTag") { rule.inboundTags = nonEmpty(try tags.strings()) }
        if let protocols = r.take("protocol") {
            rule.protocols = nonEmpty(try protocols.strings())
        }
        if let matcher = r.take("domainMatcher") { try checkDomainMatcher(matcher) }
        try r.finish(unsupported: ["attributes", "setAttribute"])
        guard rule.hasCondition else { throw node.error("a rule needs at least one condition") }
        return rule
    }

    /// `portList` is a string in the v5 schema; a bare number is accepted too.
    static func readPortListV5(_ node: ConfigNode) throws -> [PortRange] {
        try readPortList(node)
    }

    /// {type: Plain|Regex|RootDomain|Full (default Plain), value}.
    static func readDomainV5(_ node: ConfigNode) throws -> DomainSet {
        var r = try node.object(protoNames: true)
        enum Kind { case plain, regex, root, full }
        let kind: Kind = try r.take("type").map {
            try readV5Enum($0, ["Plain", "Regex", "RootDomain", "Full"], [Kind.plain, .regex, .root, .full])
        } ?? .plain
        let valueNode = try r.require("value")
        let value = try valueNode.string()
        guard !value.isEmpty else { throw valueNode.error("empty domain pattern") }
        // `attribute` only filters geosite entries; on a rule's own domain it would do nothing.
        try r.finish(unsupported: ["attribute"])
        var set = DomainSet()
        switch kind {
        case .plain: set.substrings = [value.lowercased()]
        case .regex:
            try checkRegex(value, valueNode)
            set.regexes = [value]
        case .root: set.rootDomains = [value.lowercased()]
        case .full: set.full = [value.lowercased()]
        }
        return set
    }

    /// {code: "cn" or "google@ads", filePath: default geosite.dat} or an inline {domain: [...]}.
    static func readGeoDomainV5(_ node: ConfigNode, geodata: GeoDataCache) throws -> DomainSet {
        var r = try node.object(protoNames: true)
        let codeNode = r.take("code")
        let file = try r.take("filePath")?.string() ?? "geosite.dat"
        _ = try r.take("countryCode")?.string()  // a label; `code` selects the entry
        let inline = r.take("domain")
        try r.finish(unsupported: ["resourceHash"])
        var set = DomainSet()
        if let inline {
            for entry in try inline.array() { set.formUnion(try readDomainV5(entry)) }
        }
        if let codeNode, case let code = try codeNode.string(), !code.isEmpty {
            if inline != nil { throw codeNode.error("\"domain\" has no effect when \"code\" loads a geosite entry") }
            set = try expandGeoSite(file: file.isEmpty ? "geosite.dat" : file, code: code, codeNode, geodata)
        }
        guard set.count > 0 else { throw node.error("a geoDomain needs \"code\" or \"domain\"") }
        return set
    }

    /// {code, filePath: default geoip.dat, inverseMatch} or inline {cidr: [{ipAddr, prefix}], inverseMatch}.
    static func readGeoIPV5(_ node: ConfigNode, geodata: GeoDataCache) throws -> IPSet {
        var r = try node.object(protoNames: true)
        let codeNode = r.take("code")
        let fileNode = r.take("filePath")
        let inverse = try r.take("inverseMatch")?.bool() ?? false
        _ = try r.take("countryCode")?.string()  // a label; `code` selects the entry
        let cidrNode = r.take("cidr")
        try r.finish(unsupported: ["resourceHash"])
        if let codeNode, case let code = try codeNode.string(), !code.isEmpty {
            if cidrNode != nil { throw codeNode.error("\"cidr\" has no effect when \"code\" loads a geoip entry") }
            let file = try fileNode?.string() ?? ""
            // The built-in private list stands in for geoip.dat's, not for a file the config names.
            return try expandGeoIP(file: file.isEmpty ? "geoip.dat" : file, code: code, inverse: inverse, codeNode, geodata,
                                   builtinPrivate: file.isEmpty)
        }
        guard let cidrNode else { throw node.error("a geoip entry needs \"code\" or \"cidr\"") }
        var cidrs: [CIDR] = []
        for entry in try cidrNode.array() {
            var c = try entry.object(protoNames: true)
            let addressNode = try c.require("ipAddr")
            guard let address = ipAddressBytes(try addressNode.string()) else { throw addressNode.mismatch("an IP address") }
            let prefix = try c.take("prefix")?.int(0...(address.count * 8)) ?? address.count * 8
            // `ip` is the binary (base64) form of ipAddr; configs written by hand use ipAddr.
            try c.finish(unsupported: ["ip"])
            cidrs.append(CIDR(address: address, prefix: prefix))
        }
        return IPSet(cidrs: cidrs, inverse: inverse)
    }
}
