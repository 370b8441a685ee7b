// Per-user limits across all workers (UserLimitPolicy), in the shared-memory region. A user's entry
// has the same index as its row in the users counter table (CounterTable .users, by the same name).
//
// Open connections: one row per worker slot (`connectionCountOffset`), each count written only by
// the worker in that slot; a user's total is the sum over the slots in use. A worker that dies takes
// its counts with it the moment the supervisor frees its slot, and the next worker in that slot
// starts from a zeroed row (WorkerSlots.claim): nothing to repair after a crash.
//
// Source addresses: `limitSourceSlots` address slots per user, each with the monotonic millisecond
// at which a worker last held a connection from it. A slot counts as present for `sourceLease` ms
// after that: the workers re-stamp the addresses of their open connections every second
// (`refresh`), so an address leaves a user's set a few seconds after its last connection ends or
// after its worker dies, again with nothing to repair.
//
// Admission (count and compare, then count the new connection) runs under the region's limits lock,
// so two workers admitting the same user at once cannot both take its last place.
//
// Rates: a GCRA clock per direction ("theoretical arrival time", monotonic ns), advanced with a
// compare-and-swap by every chunk of a limited user: no lock on the data path.
//
//   entry (SharedLayout.limitStride = 576 bytes):
//     0 uplink clock (ns)   8 downlink clock (ns)   16…63 reserved
//     64 + 32·i: source slot i: address high:8, low:8, last seen (monotonic ms, 0 = empty):8, reserved:8

public struct UserLimitTable {
    /// How long an address stays in a user's set without a re-stamp (workers re-stamp every second).
    public static let sourceLease: UInt64 = 3000

    public enum Refusal: String, Sendable {
        case connections = "limit_connections"
        case sourceIPs = "limit_source_ips"
    }

    public enum Admission: Equatable, Sendable {
        /// `sourceSlot`: where the address is kept (nil when it was not asked for, or no slot was free).
        case admitted(sourceSlot: Int?)
        case refused(Refusal)
    }

    let region: SharedRegion
    let slots: WorkerSlots

    public init(region: SharedRegion) {
        self.region = region
        slots = WorkerSlots(region: region)
    }

    public var userCapacity: Int { region.layout.parameters.userCapacity }

    private func sourceOffset(_ user: Int, _ i: Int) -> Int { region.layout.limitOffset(user: user) + 64 + 32 * i }

    private func fresh(_ lastSeen: UInt64, now: UInt64) -> Bool {
        // Signed: another process may have stamped a millisecond later than this one's `now`.
        lastSeen != 0 && Int64(bitPattern: now &- lastSeen) < Int64(Self.sourceLease)
    }

    // MARK: connections and addresses

    /// Admits a new connection of `user` for the worker in `slot` if `limits` allow it, and counts
    /// it. `trackSource`: keep the address even without a `sourceIPs` limit (online users).
    public func admit(user: Int, slot: Int, source: SourceKey?, limits: EffectiveUserLimits, trackSource: Bool,
                      nowMilliseconds now: UInt64) -> Admission {
        precondition(user >= 0 && user < userCapacity && slot >= 0 && slot < slots.count)
        return region.withLock(at: SharedLayout.limitLockOffset) {
            if limits.connections > 0, openConnections(user: user) >= limits.connections {
                return .refused(.connections)
            }
            var kept: Int? = nil
            if let source, trackSource || limits.sourceIPs > 0 {
                switch place(source, user: user, limit: limits.sourceIPs, now: now) {
                case .refused: return .refused(.sourceIPs)
                case .placed(let i): kept = i
                case .noRoom: kept = nil
                }
            }
            region.add(region.layout.connectionCountOffset(slot: slot, user: user), 1)
            return .admitted(sourceSlot: kept)
        }
    }

    private enum Placement { case placed(Int), refused, noRoom }

    /// Under the lock: the slot that holds `source` (re-stamped), or a free one it now holds.
    private func place(_ source: SourceKey, user: Int, limit: Int, now: UInt64) -> Placement {
        var present = 0
        var free: Int? = nil
        for i in 0..<SharedLayout.limitSourceSlots {
            let o = sourceOffset(user, i)
            let seen = region.load(o + 16)
            if region.load(o) == source.high, region.load(o + 8) == source.low, seen != 0 {
                region.store(o + 16, max(now, 1))
                return .placed(i)
            }
            if fresh(seen, now: now) { present += 1 } else if free == nil { free = i }
        }
        if limit > 0, present >= limit { return .refused }
        guard let i = free else { return .noRoom }
        let o = sourceOffset(user, i)
        region.store(o, source.high)
        region.store(o + 8, source.low)
        region.store(o + 16, max(now, 1))
        return .placed(i)
    }

    /// One connection of `user` in `slot` ended.
    public func release(user: Int, slot: Int) {
        region.add(region.layout.connectionCountOffset(slot: slot, user: user), UInt64.max)  // − 1
    }

    /// Re-stamps the addresses the worker in `slot` still has connections from; an address whose slot
    /// was taken over meanwhile (its stamp lapsed) is placed again, whatever the limit: its
    /// connections were admitted. Returns the slots now used, in order (nil: no room).
    public func refresh(_ held: [(user: Int, source: SourceKey, slot: Int?)], nowMilliseconds now: UInt64) -> [Int?] {
        guard !held.isEmpty else { return [] }
        return region.withLock(at: SharedLayout.limitLockOffset) {
            held.map { h in
                if let i = h.slot {
                    let o = sourceOffset(h.user, i)
                    if region.load(o) == h.source.high, region.load(o + 8) == h.source.low, region.load(o + 16) != 0 {
                        region.store(o + 16, max(now, 1))
                        return i
                    }
                }
                if case .placed(let i) = place(h.source, user: h.user, limit: 0, now: now) { return i }
                return nil
            }
        }
    }

    /// The worker slots in use now (whose rows count).
    public var liveSlots: [Int] { (0..<slots.count).filter { slots.isInUse($0) } }

    /// Open connections of `user` on every live worker; `live`: `liveSlots`, when the caller asks
    /// for many users at once.
    public func openConnections(user: Int, live: [Int]? = nil) -> Int {
        var total = 0
        func add(_ slot: Int) {
            total &+= Int(truncatingIfNeeded: region.load(region.layout.connectionCountOffset(slot: slot, user: user)))
        }
        // One user (admission): no list built.
        if let live { live.forEach(add) } else { for slot in 0..<slots.count where slots.isInUse(slot) { add(slot) } }
        return total
    }

    /// The addresses `user` is connected from now, with when each was last stamped (monotonic ms).
    public func sources(user: Int, nowMilliseconds now: UInt64) -> [(source: SourceKey, lastSeen: UInt64)] {
        region.withLock(at: SharedLayout.limitLockOffset) {
            (0..<SharedLayout.limitSourceSlots).compactMap { i in
                let o = sourceOffset(user, i)
                let seen = region.load(o + 16)
                guard fresh(seen, now: now) else { return nil }
                return (SourceKey(high: region.load(o), low: region.load(o + 8)), seen)
            }
        }
    }

    // MARK: rates

    /// Counts `bytes` of `user`'s traffic in one direction against `rate` bytes/s with `burst` bytes
    /// of slack; returns how many ns the caller should wait before moving more (0: go on). The bytes
    /// have gone already: a chunk is never held back or cut, the next read is.
    public func take(user: Int, uplink: Bool, bytes: Int, rate: Int, burst: Int, nowNanoseconds now: UInt64) -> UInt64 {
        guard rate > 0, bytes > 0 else { return 0 }
        let o = region.layout.limitOffset(user: user) + (uplink ? 0 : 8)
        let cost = Self.nanoseconds(bytes: bytes, rate: rate)
        let slack = Self.nanoseconds(bytes: burst, rate: rate)
        while true {
            let clock = region.load(o)
            let next = max(clock, now).addingReportingOverflow(cost)
            let updated = next.overflow ? UInt64.max : next.partialValue
            if region.compareExchange(o, expected: clock, desired: updated) {
                return updated > now &+ slack ? updated - now - slack : 0
            }
        }
    }

    /// `bytes` at `rate` bytes/s in ns, without overflowing (both at most 2^40 by the parser).
    static func nanoseconds(bytes: Int, rate: Int) -> UInt64 {
        let b = UInt64(max(bytes, 0)), r = UInt64(max(rate, 1))
        let whole = b / r, part = b % r
        let (high, overflow) = whole.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return UInt64.max / 2 }
        return high &+ UInt64(Double(part) * 1e9 / Double(r))
    }
}
