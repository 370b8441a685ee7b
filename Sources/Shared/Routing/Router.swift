// The compiled routing table of one worker: built once from the validated model and the worker's
// outbound list, then asked once per connection, Mux sub-session and XUDP packet. Pure and immutable
// after init; the only state a decision touches is the random choice of a balancer.
//
// Semantics (V2Ray app/router): rules are tried in order and the first whose conditions all hold
// decides; no match means the default outbound (index 0). Domain strategies:
// - AsIs: IP conditions see only a destination given as an IP.
// - IPOnDemand: the first rule with an IP condition whose other conditions hold, for a domain
//   destination, makes the router answer `.resolveFirst`; asked again with `resolvedIPs`, IP
//   conditions hold when any resolved address matches.
// - IPIfNonMatch: rules are first tried with the domain alone; if none holds and some rule has an IP
//   condition, `.resolveFirst`, then all rules are tried again with the resolved addresses.

public final class Router: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; `randomIndex` must be thread-safe,
    // which the default (the system generator) is.
    private let rules: [CompiledRule]
    private let strategy: RoutingConfig.DomainStrategy
    private let hasIPCondition: Bool
    private let randomIndex: @Sendable (Int) -> Int

    public convenience init(_ config: RoutingConfig, outboundTags: [String?]) throws {
        try self.init(config, outboundTags: outboundTags, randomIndex: { Int.random(in: 0..<$0) })
    }

    /// `randomIndex(n)` returns a number in 0..<n (injectable for tests).
    public init(_ config: RoutingConfig, outboundTags: [String?], randomIndex: @escaping @Sendable (Int) -> Int) throws {
        guard !outboundTags.isEmpty else { throw RouterError(reason: "no outbounds to route to") }
        var index: [String: Int] = [:]
        for (i, tag) in outboundTags.enumerated() {
            if let tag, index[tag] == nil { index[tag] = i }
        }
        var balancers: [String: [Int]] = [:]
        for balancer in config.balancers {
            var candidates = outboundTags.indices.filter { i in
                guard let tag = outboundTags[i] else { return false }
                return balancer.selectors.contains { tag.hasPrefix($0) }
            }
            if candidates.isEmpty, let fallback = balancer.fallbackTag, let i = index[fallback] { candidates = [i] }
            guard !candidates.isEmpty else {
                throw RouterError(reason: "\(balancer.jsonPath): no outbound tag starts with \(balancer.selectors)")
            }
            balancers[balancer.tag] = candidates
        }
        rules = try config.rules.map { rule in
            let target: CompiledRule.Target
            switch rule.target {
            case .outbound(let tag):
                guard let i = index[tag] else { throw RouterError(reason: "\(rule.jsonPath): no outbound tagged \"\(tag)\"") }
                target = .outbound(i)
            case .balancer(let tag):
                guard let candidates = balancers[tag] else {
                    throw RouterError(reason: "\(rule.jsonPath): no balancer tagged \"\(tag)\"")
                }
                target = .balancer(candidates)
            }
            return try CompiledRule(rule, target: target)
        }
        strategy = config.domainStrategy
        hasIPCondition = rules.contains { $0.ip != nil }
        self.randomIndex = randomIndex
    }

    public func route(_ request: RouteRequest) -> RouteDecision {
        let domain = request.domain.flatMap(Self.normalizedDomain)
        // A domain destination with no address yet: IP conditions can only hold after resolution.
        let unresolved = request.ip == nil && domain != nil && request.resolvedIPs == nil
        for rule in rules where rule.matchesExceptIP(request, domain: domain) {
            if let ip = rule.ip {
                if let address = request.ip {
                    guard ip.matches(address) else { continue }
                } else if unresolved {
                    if strategy == .ipOnDemand { return .resolveFirst }
                    continue
                } else {
                    guard let resolved = request.resolvedIPs, resolved.contains(where: ip.matches) else { continue }
                }
            }
            return decision(rule.target)
        }
        if unresolved && strategy == .ipIfNonMatch && hasIPCondition { return .resolveFirst }
        return .outbound(0)
    }

    private func decision(_ target: CompiledRule.Target) -> RouteDecision {
        switch target {
        case .outbound(let i): return .outbound(i)
        case .balancer(let candidates):
            if candidates.count == 1 { return .outbound(candidates[0]) }
            let pick = randomIndex(candidates.count)
            return .outbound(candidates[min(max(pick, 0), candidates.count - 1)])
        }
    }

    /// Lower-case UTF-8 bytes without a trailing dot ("Example.COM." → "example.com"); nil for an empty
    /// name. Made once per decision; every domain matcher reads these bytes.
    static func normalizedDomain(_ domain: String) -> [UInt8]? {
        var bytes = Array(domain.utf8)
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        guard !bytes.isEmpty else { return nil }
        for i in bytes.indices where (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(bytes[i]) { bytes[i] |= 0x20 }
        return bytes
    }
}
