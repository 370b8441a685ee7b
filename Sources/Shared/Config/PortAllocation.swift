/// V2Ray's `allocate` strategy "random" for an inbound with a port range (dynamic port): only
/// `concurrency` of its ports listen at a time, a new random choice every `refresh` minutes. The
/// parser keeps every port (one InboundConfig each, this value on all of them); the supervisor calls
/// `select` at start, at every reload and at every refresh, so the choice is an ordinary reload:
/// connections on ports that stop listening go on, the new ports are served at once.
public struct PortAllocation: Codable, Equatable, Sendable {
    public var refreshMinutes: Int
    public var concurrency: Int

    public init(refreshMinutes: Int, concurrency: Int) {
        self.refreshMinutes = refreshMinutes
        self.concurrency = concurrency
    }

    /// The config with, for every random-allocated inbound, `concurrency` of its ports chosen by
    /// `random(n)` (an index in 0..<n), the others left out; the inbounds that detour to one learn
    /// the chosen ports and that they hold until `now` + refresh.
    public static func select(_ config: Config, now: Int64, random: (Int) -> Int = { Int.random(in: 0..<$0) }) -> Config {
        var selected = config
        var groups: [String: [Int]] = [:]  // jsonPath → indices of its expanded inbounds
        for (i, inbound) in config.inbounds.enumerated() where inbound.allocation != nil {
            groups[inbound.jsonPath, default: []].append(i)
        }
        guard !groups.isEmpty else { return config }
        var dropped = Set<Int>()
        var validUntil: [String: Int64] = [:]  // tag → end of the current choice
        for (_, members) in groups.sorted(by: { $0.key < $1.key }) {
            guard let allocation = config.inbounds[members[0]].allocation else { continue }
            var pool = members
            var keep: [Int] = []
            while keep.count < min(allocation.concurrency, members.count) {
                let pick = min(max(random(pool.count), 0), pool.count - 1)
                keep.append(pool.remove(at: pick))
            }
            dropped.formUnion(pool)
            if let tag = config.inbounds[members[0]].tag {
                validUntil[tag] = now + Int64(allocation.refreshMinutes) * 60
            }
        }
        selected.inbounds = config.inbounds.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
        for i in selected.inbounds.indices {
            guard case .vmess(var settings) = selected.inbounds[i].settings, var detour = settings.detour,
                  let until = validUntil[detour.tag] else { continue }
            detour.ports = selected.inbounds.filter { $0.tag == detour.tag }.map(\.port)
            detour.validUntil = until
            settings.detour = detour
            selected.inbounds[i].settings = .vmess(settings)
        }
        return selected
    }

    /// The shortest refresh of a config's random allocations, in seconds (nil: none).
    public static func refreshInterval(_ config: Config) -> Double? {
        config.inbounds.compactMap(\.allocation).map { Double($0.refreshMinutes) * 60 }.min()
    }
}
