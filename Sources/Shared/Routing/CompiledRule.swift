// One rule compiled for matching. Conditions are tested cheapest first (a compare, a bitmap bit, a set
// lookup, then domain and IP matching); they are ANDed, so the order changes only the cost. The IP
// condition is left to the router because it may need a resolution first. A class: the router walks
// its rules once per decision, and a struct this wide would be copied (a dozen retains) per rule.

final class CompiledRule {
    enum Target {
        case outbound(Int)
        /// Candidate outbound indices (never empty).
        case balancer([Int])
    }

    /// Either the sets match (`inverse` false) or their complements; V2Ray's inverse geoip entries hold
    /// for every address outside the entry.
    struct IPCondition {
        /// Usually one plain set (all plain sets merge); inverse sets stay separate.
        let first: IPRangeSet
        let firstInverse: Bool
        let rest: [(set: IPRangeSet, inverse: Bool)]

        init(_ sets: [IPSet]) {
            // All plain sets merge into one; each inverse set stays separate.
            var plain: [CIDR] = []
            var list: [(set: IPRangeSet, inverse: Bool)] = []
            for set in sets {
                if set.inverse { list.append((IPRangeSet(set.cidrs), true)) } else { plain += set.cidrs }
            }
            if !plain.isEmpty || list.isEmpty { list.insert((IPRangeSet(plain), false), at: 0) }
            first = list[0].set
            firstInverse = list[0].inverse
            rest = Array(list.dropFirst())
        }

        func matches(_ address: [UInt8]) -> Bool {
            if first.contains(address) != firstInverse { return true }
            for entry in rest where entry.set.contains(address) != entry.inverse { return true }
            return false
        }
    }

    let target: Target
    let networks: Set<RouteNetwork>?
    let ports: PortBitmap?
    let sourcePorts: PortBitmap?
    let inboundTags: Set<String>?
    let users: Set<String>?
    let protocols: [String]?
    let source: IPCondition?
    let domains: DomainMatcher?
    let ip: IPCondition?

    init(_ rule: RoutingRule, target: Target) throws {
        self.target = target
        networks = rule.networks.map(Set.init)
        ports = rule.ports.map(PortBitmap.init)
        sourcePorts = rule.sourcePorts.map(PortBitmap.init)
        inboundTags = rule.inboundTags.map(Set.init)
        users = rule.users.map(Set.init)
        protocols = rule.protocols
        source = rule.source.map(IPCondition.init)
        do {
            domains = try rule.domains.map(DomainMatcher.init)
        } catch let error as DomainRegex.SyntaxError {
            throw RouterError(reason: "\(rule.jsonPath): invalid regexp: \(error.reason)")
        }
        ip = rule.ip.map(IPCondition.init)
    }

    /// Every condition except the destination IP. `domain` is normalised or nil.
    func matchesExceptIP(_ request: RouteRequest, domain: [UInt8]?) -> Bool {
        if let networks, !networks.contains(request.network) { return false }
        if let ports, !ports.contains(request.port) { return false }
        if let sourcePorts {
            guard let port = request.sourcePort, sourcePorts.contains(port) else { return false }
        }
        if let inboundTags {
            guard let tag = request.inboundTag, inboundTags.contains(tag) else { return false }
        }
        if let users {
            guard let user = request.user, users.contains(user) else { return false }
        }
        if let protocols {
            guard let sniffed = request.sniffedProtocol, protocols.contains(where: { sniffed.hasPrefix($0) }) else {
                return false
            }
        }
        if let source {
            guard let address = request.sourceIP, source.matches(address) else { return false }
        }
        if let domains {
            guard let domain, domains.matches(domain) else { return false }
        }
        return true
    }
}
