// v4 `routing` (v2fly infra/conf v4 RouterConfig, Xray's routing) and the pieces both formats share:
// geodata expansion, port lists, networks, and the checks against the outbounds.
//
// Geodata references are expanded here, at parse time, into the rule's own lists (RoutingRule), so a
// missing file or tag is an error naming the rule, and workers never read .dat files.

extension ConfigParser {
    /// Keys of a v4 rule that exist upstream (V2Ray or Xray) but are not implemented.
    static let unsupportedRuleKeys: Set<String> = [
        "attrs", "localIP", "localPort", "vlessRoute", "process", "webhook",
    ]

    /// `apiTag`: the API's tag (ConfigParser+API), a valid rule target though no outbound has it.
    static func readRoutingV4(_ node: ConfigNode, outbounds: [OutboundConfig], apiTag: String? = nil,
                              geodata: GeoDataCache) throws -> RoutingConfig {
        var r = try node.object()
        var routing = RoutingConfig()
        if let strategy = r.take("domainStrategy") {
            routing.domainStrategy = try readRoutingDomainStrategy(strategy)
        }
        if let matcher = r.take("domainMatcher") { try checkDomainMatcher(matcher) }
        // Balancers first, whatever the document order: rules name them.
        var targets = RoutingTargets(outboundTags: Set(outbounds.compactMap(\.tag)))
        if let balancers = r.take("balancers") {
            routing.balancers = try balancers.array().map { try readBalancerV4($0, &targets) }
        }
        if let apiTag {
            // After the balancers: a balancer selecting the API would send traffic into it.
            targets.outboundTags.insert(apiTag)
        }
        var errors = ConfigErrorCollector()
        if let rules = r.take("rules") {
            routing.rules = try rules.array().compactMap { rule in try errors.attempt { try readRuleV4(rule, targets, geodata: geodata) } }
        }
        // v2fly's pre-4.x form nested the same keys under "settings".
        _ = try errors.attempt { try r.finish(unsupported: ["settings"]) }
        try errors.finish()
        return routing
    }

    /// v4 spelling, case-insensitive as v2fly reads it (with its `_`/`-` variants). v2fly's router
    /// treats "AlwaysIP"/"UseIp" like AsIs (only the two IP strategies resolve), so they mean AsIs here.
    static func readRoutingDomainStrategy(_ node: ConfigNode) throws -> RoutingConfig.DomainStrategy {
        let text = try node.string()
        let folded = String(text.lowercased().filter { $0 != "_" && $0 != "-" })
        switch folded {
        case "asis", "alwaysip", "useip": return .asIs
        case "ipifnonmatch": return .ipIfNonMatch
        case "ipondemand": return .ipOnDemand
        default: throw node.mismatch("one of AsIs, IPIfNonMatch, IPOnDemand")
        }
    }

    /// `domainMatcher` picks V2Ray's matcher algorithm, never what matches: accepted, no effect.
    static func checkDomainMatcher(_ node: ConfigNode) throws {
        guard ["", "linear", "mph", "hybrid"].contains(try node.string()) else {
            throw node.mismatch("\"linear\" or \"mph\"")
        }
    }

    static func readBalancerV4(_ node: ConfigNode, _ targets: inout RoutingTargets) throws -> RoutingBalancer {
        var r = try node.object()
        let tagNode = try r.require("tag")
        let tag = try tagNode.string()
        guard !tag.isEmpty else { throw tagNode.error("a balancer needs a non-empty tag") }
        let selectorNode = try r.require("selector")
        let selectors = try selectorNode.strings()
        guard !selectors.isEmpty else { throw selectorNode.error("a balancer needs at least one selector") }
        if let strategy = r.take("strategy") {
            var s = try strategy.object()
            if let type = s.take("type") { try checkBalancingStrategy(type) }
            try s.finish(unsupported: ["settings"])
        }
        let fallbackNode = r.take("fallbackTag")
        let fallback = try fallbackNode?.string()
        try r.finish()
        let balancer = RoutingBalancer(tag: tag, selectors: selectors, fallbackTag: fallback?.isEmpty == true ? nil : fallback,
                                       jsonPath: node.path.description)
        try checkBalancer(balancer, tag: tagNode, selector: selectorNode, fallback: fallbackNode, &targets)
        return balancer
    }

    static func checkBalancingStrategy(_ node: ConfigNode) throws {
        let name = try node.string()
        switch name.lowercased() {
        case "", "random": return
        case "leastping", "leastload", "roundrobin":
            throw node.error("balancing strategy \(JSONC.quote(name)) is not supported by vmessd yet")
        default: throw node.mismatch("\"random\"")
        }
    }

    static func readRuleV4(_ node: ConfigNode, _ targets: RoutingTargets, geodata: GeoDataCache) throws -> RoutingRule {
        var r = try node.object()
        if let type = r.take("type"), try type.string() != "field" {
            throw type.mismatch("\"field\"")
        }
        let target = try readRuleTarget(node, &r, outboundKey: "outboundTag", balancerKey: "balancerTag", targets)
        var rule = RoutingRule(target: target, jsonPath: node.path.description)
        for key in ["domain", "domains"] {
            guard let list = r.take(key) else { continue }
            var set = rule.domains ?? DomainSet()
            for entry in try stringList(list) {
                set.formUnion(try readDomainEntryV4(entry, geodata: geodata))
            }
            rule.domains = set.count > 0 ? set : nil
        }
        // An empty list is no condition at all, as in V2Ray (not a condition nothing satisfies).
        if let list = r.take("ip") { rule.ip = nonEmpty(try readIPListV4(list, geodata: geodata)) }
        if let list = r.take("source") ?? r.take("sourceIP") { rule.source = nonEmpty(try readIPListV4(list, geodata: geodata)) }
        if let port = r.take("port") { rule.ports = try readPortList(port) }
        if let port = r.take("sourcePort") { rule.sourcePorts = try readPortList(port) }
        if let network = r.take("network") { rule.networks = nonEmpty(try readNetworks(network)) }
        if let users = r.take("user") { rule.users = nonEmpty(try stringList(users).map { try $0.string() }) }
        if let tags = r.take("inboundTag") { rule.inboundTags = nonEmpty(try stringList(tags).map { try $0.string() }) }
        if let protocols = r.take("protocol") {
            // Names as sniffing reports them ("http1", "tls", "bittorrent"), matched by prefix. As in
            // V2Ray, the condition only holds for requests of inbounds with sniffing enabled.
            rule.protocols = nonEmpty(try stringList(protocols).map { try $0.string() })
        }
        if let matcher = r.take("domainMatcher") { try checkDomainMatcher(matcher) }
        r.ignore("ruleTag")  // Xray: a name for logs and its API, no effect on matching
        try r.finish(unsupported: unsupportedRuleKeys)
        guard rule.hasCondition else { throw node.error("a rule needs at least one condition") }
        return rule
    }

    /// Exactly one of the two target keys, naming something that exists. Empty strings count as absent
    /// (Go's decoder leaves them empty, V2Ray then treats the key as unset).
    static func readRuleTarget(_ node: ConfigNode, _ r: inout ObjectReader, outboundKey: String, balancerKey: String,
                               _ targets: RoutingTargets) throws -> RoutingRule.Target {
        let outboundNode = r.take(outboundKey)
        let balancerNode = r.take(balancerKey)
        let outbound = try outboundNode?.string()
        let balancer = try balancerNode?.string()
        let target: RoutingRule.Target
        let targetNode: ConfigNode
        switch (outbound?.isEmpty == false ? outbound : nil, balancer?.isEmpty == false ? balancer : nil) {
        case (let tag?, nil): target = .outbound(tag); targetNode = outboundNode!
        case (nil, let tag?): target = .balancer(tag); targetNode = balancerNode!
        case (_?, _?): throw node.error("a rule has \(JSONC.quote(outboundKey)) or \(JSONC.quote(balancerKey)), not both")
        case (nil, nil): throw node.error("a rule needs \(JSONC.quote(outboundKey)) or \(JSONC.quote(balancerKey))")
        }
        try checkTarget(target, targetNode, targets)
        return target
    }

    static func nonEmpty<T>(_ list: [T]) -> [T]? { list.isEmpty ? nil : list }

    /// v2fly's StringList: an array of strings, or one string of comma-separated items.
    static func stringList(_ node: ConfigNode) throws -> [ConfigNode] {
        if case .string(let text) = node.value {
            return text.split(separator: ",").map { node.path.node(.string(String($0)), node.file) }
        }
        guard case .array = node.value else { throw node.mismatch("an array of strings") }
        return try node.array()
    }

    // MARK: domains

    static func readDomainEntryV4(_ node: ConfigNode, geodata: GeoDataCache) throws -> DomainSet {
        let text = try node.string()
        var set = DomainSet()
        func value(after prefix: String) throws -> String {
            let rest = String(text.dropFirst(prefix.count))
            guard !rest.isEmpty else { throw node.error("empty pattern after \(JSONC.quote(prefix))") }
            return rest
        }
        if text.hasPrefix("regexp:") {
            let pattern = try value(after: "regexp:")
            try checkRegex(pattern, node)
            set.regexes = [pattern]
        } else if text.hasPrefix("domain:") {
            set.rootDomains = [try value(after: "domain:").lowercased()]
        } else if text.hasPrefix("full:") {
            set.full = [try value(after: "full:").lowercased()]
        } else if text.hasPrefix("keyword:") {
            set.substrings = [try value(after: "keyword:").lowercased()]
        } else if text.hasPrefix("geosite:") {
            set = try expandGeoSite(file: "geosite.dat", code: try value(after: "geosite:"), node, geodata)
        } else if text.hasPrefix("ext:") {
            let (file, code) = try extReference(try value(after: "ext:"), node)
            set = try expandGeoSite(file: file, code: code, node, geodata)
        } else if text.hasPrefix("dotless:") || text.hasPrefix("ext-domain:") {
            throw node.error("\(JSONC.quote(String(text.prefix(while: { $0 != ":" })) + ":")) patterns are not supported by vmessd yet")
        } else {
            guard !text.isEmpty else { throw node.error("empty domain pattern") }
            set.substrings = [text.lowercased()]
        }
        return set
    }

    static func checkRegex(_ pattern: String, _ node: ConfigNode) throws {
        do {
            try DomainRegex.validate(pattern)
        } catch let error as DomainRegex.SyntaxError {
            throw node.error("regexp \(JSONC.quote(pattern)): \(error.reason)")
        }
    }

    /// "FILE:TAG" of `ext:FILE:TAG`.
    static func extReference(_ text: String, _ node: ConfigNode) throws -> (file: String, code: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw node.error("expected \"ext:FILE:TAG\", got \(JSONC.quote("ext:" + text))")
        }
        return (String(parts[0]), String(parts[1]))
    }

    /// `NAME` or `NAME@attr@attr…` of one geosite file: the domains carrying every listed attribute.
    static func expandGeoSite(file: String, code codeAndAttributes: String, _ node: ConfigNode,
                              _ geodata: GeoDataCache) throws -> DomainSet {
        let parts = codeAndAttributes.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
        let code = parts[0]
        let attributes = parts.dropFirst().map { $0.lowercased() }
        guard !code.isEmpty, !attributes.contains("") else {
            throw node.error("expected a tag name with optional @attributes, got \(JSONC.quote(codeAndAttributes))")
        }
        let domains: [GeoDataDecoder.SiteDomain]
        do {
            domains = try geodata.site(file: file, code: code)
        } catch let failure as GeoDataCache.Failure {
            throw node.error(failure.reason)
        }
        var set = DomainSet()
        for domain in domains where attributes.allSatisfy({ a in domain.attributes.contains { $0.lowercased() == a } }) {
            switch domain.kind {
            case .plain: set.substrings.append(domain.value.lowercased())
            case .regex:
                try checkRegex(domain.value, node)
                set.regexes.append(domain.value)
            case .rootDomain: set.rootDomains.append(domain.value.lowercased())
            case .full: set.full.append(domain.value.lowercased())
            }
        }
        guard set.count > 0 else {
            throw node.error("\(file) tag \(JSONC.quote(code)) has no domain with attribute \(attributes.map { "@" + $0 }.joined())")
        }
        return set
    }

    // MARK: IPs

    static func readIPListV4(_ node: ConfigNode, geodata: GeoDataCache) throws -> [IPSet] {
        var literal: [CIDR] = []
        var sets: [IPSet] = []
        for entry in try stringList(node) {
            let text = try entry.string()
            if text.hasPrefix("geoip:") {
                var code = String(text.dropFirst("geoip:".count))
                let inverse = code.hasPrefix("!")
                if inverse { code.removeFirst() }
                sets.append(try expandGeoIP(file: "geoip.dat", code: code, inverse: inverse, entry, geodata))
            } else if text.hasPrefix("ext:") {
                var (file, code) = try extReference(String(text.dropFirst("ext:".count)), entry)
                let inverse = code.hasPrefix("!")
                if inverse { code.removeFirst() }
                sets.append(try expandGeoIP(file: file, code: code, inverse: inverse, entry, geodata, builtinPrivate: false))
            } else if let cidr = cidrFromText(text) {
                literal.append(cidr)
            } else {
                throw entry.mismatch("a CIDR, an IP address, \"geoip:CODE\" or \"ext:FILE:TAG\"")
            }
        }
        if !literal.isEmpty { sets.insert(IPSet(cidrs: literal), at: 0) }
        return sets
    }

    /// One geoip tag. `private` from geoip.dat is built in (see PrivateIPRanges), so the most common
    /// rule works without geodata; `inverse` (`geoip:!cn`) flips the file's own inverse_match.
    static func expandGeoIP(file: String, code: String, inverse: Bool, _ node: ConfigNode, _ geodata: GeoDataCache,
                            builtinPrivate: Bool = true) throws -> IPSet {
        guard !code.isEmpty else { throw node.error("empty geoip tag") }
        if builtinPrivate && code.lowercased() == "private" {
            var set = PrivateIPRanges.set
            set.inverse = inverse
            return set
        }
        do {
            var set = try geodata.ip(file: file, code: code)
            set.inverse = set.inverse != inverse
            return set
        } catch let failure as GeoDataCache.Failure {
            throw node.error(failure.reason)
        }
    }

    // MARK: ports and networks

    /// A port number, or a string of comma-separated ports and "from-to" ranges ("53,443,1000-2000").
    static func readPortList(_ node: ConfigNode) throws -> [PortRange] {
        switch node.value {
        case .number:
            let port = try node.int(0...65_535)
            return [PortRange(UInt16(port), UInt16(port))]
        case .string(let text):
            return try parsePortList(text, node)
        default:
            throw node.mismatch("a port number or a string like \"53,443,1000-2000\"")
        }
    }

    static func parsePortList(_ text: String, _ node: ConfigNode) throws -> [PortRange] {
        var ranges: [PortRange] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                .map { $0.trimmingSpaces }
            let numbers = bounds.map { text -> UInt16? in
                guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
                      let value = Int(text), value <= 65_535 else { return nil }
                return UInt16(value)
            }
            guard let from = numbers.first ?? nil, let to = numbers.last ?? nil, from <= to else {
                throw node.error("invalid port or range \(JSONC.quote(String(item))) (expected ports 0-65535 like \"53,443,1000-2000\")")
            }
            ranges.append(PortRange(from, to))
        }
        return ranges
    }

    /// "tcp", "udp", "tcp,udp", or an array of those ("" or [] is no condition).
    static func readNetworks(_ node: ConfigNode) throws -> [RouteNetwork] {
        var networks: [RouteNetwork] = []
        for item in try stringList(node) {
            let name = try item.string().trimmingSpaces.lowercased()
            guard let network = RouteNetwork(rawValue: name) else { throw item.mismatch("\"tcp\" or \"udp\"") }
            if !networks.contains(network) { networks.append(network) }
        }
        return networks
    }

    // MARK: cross-checks

    /// The outbound tags, and the balancers read so far: what rule targets may name.
    struct RoutingTargets {
        var outboundTags: Set<String>
        var balancerTags: Set<String> = []
    }

    /// A rule's outboundTag/balancerTag node must name an existing outbound/balancer.
    static func checkTarget(_ target: RoutingRule.Target, _ node: ConfigNode, _ targets: RoutingTargets) throws {
        switch target {
        case .outbound(let tag) where !targets.outboundTags.contains(tag):
            throw node.error("no outbound has tag \(JSONC.quote(tag))")
        case .balancer(let tag) where !targets.balancerTags.contains(tag):
            throw node.error("no balancer has tag \(JSONC.quote(tag))")
        default: break
        }
    }

    /// A balancer's tag is unique, its fallback exists, and its selectors pick at least one outbound
    /// (or it has a fallback); adds it to `targets`.
    static func checkBalancer(_ balancer: RoutingBalancer, tag: ConfigNode, selector: ConfigNode, fallback: ConfigNode?,
                              _ targets: inout RoutingTargets) throws {
        guard targets.balancerTags.insert(balancer.tag).inserted else {
            throw tag.error("duplicate balancer tag \(JSONC.quote(balancer.tag))")
        }
        if let name = balancer.fallbackTag, let fallback, !targets.outboundTags.contains(name) {
            throw fallback.error("no outbound has tag \(JSONC.quote(name))")
        }
        let selected = targets.outboundTags.contains { tag in balancer.selectors.contains { tag.hasPrefix($0) } }
        if !selected && balancer.fallbackTag == nil {
            throw selector.error("no outbound tag starts with \(balancer.selectors.map { JSONC.quote($0) }.joined(separator: " or "))")
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
