// Which servers a lookup asks, in which order, for which record types, and which of their addresses
// it accepts: V2Ray 4.x app/dns (dns.go sortClients, nameserver.go MatchExpectedIPs) on vmessd's
// matchers.
//
// - Servers whose `domains` match the name come first (in config order), then every other server
//   not marked `skipFallback`, unless `disableFallback` (or `disableFallbackIfMatch` and something
//   matched); if that leaves nothing, the first server.
// - A `localhost` server is preferred for local and dotless names (V2Ray's localTLDsAndDotlessDomains).
// - `expectIPs` keeps only matching addresses of that server; none left means "ask the next server".

public struct DNSServerSelection {
    struct Server {
        let address: DNSServerConfig.Address
        let domains: DomainMatcher?
        let expectIPs: CompiledRule.IPCondition?
        let skipFallback: Bool
        let queryStrategy: DNSConfig.QueryStrategy
    }

    let servers: [Server]
    let disableFallback: Bool
    let disableFallbackIfMatch: Bool

    /// Names the system resolver is asked first for (V2Ray app/dns/config.go).
    static var localNames: DomainSet {
        var set = DomainSet()
        set.regexes = ["^[^.]+$"]
        set.rootDomains = ["local", "localdomain", "localhost", "lan", "home.arpa", "example", "invalid", "test"]
        return set
    }

    public init(_ config: DNSConfig) throws {
        servers = try config.servers.map { server in
            var domains = server.domains
            if server.address == .system {
                var set = domains ?? DomainSet()
                set.formUnion(Self.localNames)
                domains = set
            }
            return Server(address: server.address, domains: try domains.map(DomainMatcher.init),
                          expectIPs: server.expectIPs.map(CompiledRule.IPCondition.init), skipFallback: server.skipFallback,
                          queryStrategy: server.queryStrategy ?? config.queryStrategy)
        }
        disableFallback = config.disableFallback
        disableFallbackIfMatch = config.disableFallbackIfMatch
    }

    public var count: Int { servers.count }

    public func address(_ server: Int) -> DNSServerConfig.Address { servers[server].address }

    /// Server indices to try for `name` (normalised), in order; never empty when there are servers.
    public func order(for name: [UInt8]) -> [Int] {
        var order: [Int] = []
        for (i, server) in servers.enumerated() where server.domains?.matches(name) == true { order.append(i) }
        let matched = !order.isEmpty
        if !(disableFallback || (disableFallbackIfMatch && matched)) {
            for (i, server) in servers.enumerated() where !server.skipFallback && !order.contains(i) { order.append(i) }
        }
        if order.isEmpty && !servers.isEmpty { order = [0] }
        return order
    }

    /// The record types to ask `server` for, given the families the caller wants.
    public func types(_ server: Int, ipv4: Bool, ipv6: Bool) -> [DNSRecordType] {
        var types: [DNSRecordType] = []
        switch servers[server].queryStrategy {
        case .useIP:
            if ipv4 { types.append(.a) }
            if ipv6 { types.append(.aaaa) }
        case .useIPv4: if ipv4 { types.append(.a) }
        case .useIPv6: if ipv6 { types.append(.aaaa) }
        }
        return types
    }

    public func hasExpectIPs(_ server: Int) -> Bool { servers[server].expectIPs != nil }

    /// The addresses of `server`'s answer that its `expectIPs` accepts (all without `expectIPs`).
    public func accepted(_ server: Int, _ addresses: [[UInt8]]) -> [[UInt8]] {
        guard let expect = servers[server].expectIPs else { return addresses }
        return addresses.filter(expect.matches)
    }
}
