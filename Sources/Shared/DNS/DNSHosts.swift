// `hosts` compiled for lookups, with V2Ray's semantics (app/dns/hosts.go): every entry whose names
// match contributes its addresses, in entry order; a single entry mapping to a domain replaces the
// name (followed up to `maximumReplacements` times, then the last name is resolved as is).
// Matching reuses routing's DomainMatcher, so `domain:`/`full:`/`keyword:`/`regexp:`/`geosite:`
// behave exactly as in routing rules.

public struct DNSHosts {
    public enum Answer: Equatable {
        /// No entry matches: ask the servers.
        case none
        /// Entries match; the addresses of the asked families (possibly none: "no such address").
        case addresses([[UInt8]])
        /// Resolve this (normalised) name instead.
        case replaced([UInt8])
    }

    static let maximumReplacements = 5
    private let entries: [(matcher: DomainMatcher, target: DNSHostEntry.Target)]

    public init(_ hosts: [DNSHostEntry]) throws {
        entries = try hosts.map { (try DomainMatcher($0.domains), $0.target) }
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// `name`: normalised (DNSQuestion.normalise). `ipv4`/`ipv6`: the families asked for.
    public func lookup(_ name: [UInt8], ipv4: Bool, ipv6: Bool) -> Answer {
        var name = name
        for depth in 0...Self.maximumReplacements {
            var addresses: [[UInt8]] = []
            var replacement: String?
            var matched = 0
            for entry in entries where entry.matcher.matches(name) {
                matched += 1
                switch entry.target {
                case .addresses(let list): addresses += list
                case .domain(let domain): replacement = domain
                }
            }
            if matched == 0 { return depth == 0 ? .none : .replaced(name) }
            // A replacement counts only when it is the one match (as V2Ray: one domain address).
            if matched == 1, let replacement, let next = DNSQuestion.normalise(Array(replacement.utf8)) {
                name = next
                continue
            }
            return .addresses(addresses.filter { ($0.count == 4 && ipv4) || ($0.count == 16 && ipv6) })
        }
        return .replaced(name)
    }
}
