import Shared

/// The worker's side of the per-user limits (UserLimitPolicy over UserLimitTable): admits each new
/// VMess connection of a limited user, keeps the addresses of its open ones stamped in shared memory,
/// and meters the rates. Event-loop confined. Users without limits cost one dictionary-free check.
final class UserLimiter {
    private let table: UserLimitTable
    /// Users' rows in the users counter table (shared with the counter publisher).
    private let users: CounterRows
    private let slot: Int
    let policy: UserLimitPolicy
    /// Levels whose users' addresses are kept for Xray's online statistics (StatSwitches.onlineLevels).
    let onlineLevels: Set<Int>
    /// Addresses this worker holds open connections from: how many, and the table's slot for it.
    private var held: [Held: (count: Int, slot: Int?)] = [:]

    struct Held: Hashable {
        var user: Int
        var source: SourceKey
    }

    init(region: SharedRegion, slot: Int, users: CounterRows, policy: UserLimitPolicy, onlineLevels: Set<Int>) {
        self.onlineLevels = onlineLevels
        table = UserLimitTable(region: region)
        self.users = users
        self.slot = slot
        self.policy = policy
    }

    enum Outcome {
        /// No limit applies to this user.
        case unlimited
        case admitted(UserLimitTicket)
        case refused(UserLimitTable.Refusal)
    }

    /// `key`: the name the user's traffic is counted under (email, else the id's short text).
    func admit(key: String, email: String?, level: Int, source: SourceKey?) -> Outcome {
        let limits = policy.limits(email: email, level: level)
        let online = email != nil && onlineLevels.contains(level)
        guard !limits.isUnlimited || online else { return .unlimited }
        guard let row = users.row(key) else { return .unlimited }  // the users table is full: counted as its overflow
        switch table.admit(user: row, slot: slot, source: source, limits: limits, trackSource: online,
                           nowMilliseconds: MonotonicClock.milliseconds()) {
        case .refused(let why):
            return .refused(why)
        case .admitted(let sourceSlot):
            // Addresses are kept (and re-stamped) only where a sourceIPs limit or the online
            // statistics use them.
            let source = limits.sourceIPs > 0 || online ? source : nil
            if let source {
                let key = Held(user: row, source: source)
                let count = held[key]?.count ?? 0
                held[key] = (count + 1, sourceSlot ?? held[key]?.slot)
            }
            return .admitted(UserLimitTicket(limiter: self, user: row, source: source, limits: limits))
        }
    }

    fileprivate func release(user: Int, source: SourceKey?) {
        table.release(user: user, slot: slot)
        guard let source else { return }
        let key = Held(user: user, source: source)
        guard let h = held[key] else { return }
        held[key] = h.count > 1 ? (h.count - 1, h.slot) : nil
    }

    /// Once a second (CounterPublisher's tick): keeps the addresses of open connections present.
    func refresh() {
        guard !held.isEmpty else { return }
        let entries = Array(held)
        let placed = table.refresh(entries.map { ($0.key.user, $0.key.source, $0.value.slot) },
                                   nowMilliseconds: MonotonicClock.milliseconds())
        for (entry, slot) in zip(entries, placed) { held[entry.key] = (entry.value.count, slot) }
    }

    /// ns to wait after `bytes` more in one direction (0: go on).
    fileprivate func take(user: Int, uplink: Bool, bytes: Int, rate: Int, burst: Int) -> UInt64 {
        table.take(user: user, uplink: uplink, bytes: bytes, rate: rate, burst: burst,
                   nowNanoseconds: MonotonicClock.nanoseconds())
    }
}

/// One admitted connection of a limited user: released exactly once, and the rate meter of its bytes.
final class UserLimitTicket {
    private unowned let limiter: UserLimiter
    private let user: Int
    private let source: SourceKey?
    let limits: EffectiveUserLimits
    private var released = false

    fileprivate init(limiter: UserLimiter, user: Int, source: SourceKey?, limits: EffectiveUserLimits) {
        self.limiter = limiter
        self.user = user
        self.source = source
        self.limits = limits
    }

    /// ns to hold the next read from the client after `bytes` of payload from it.
    func afterUplink(_ bytes: Int) -> UInt64 {
        guard limits.uplinkRate > 0 else { return 0 }
        return limiter.take(user: user, uplink: true, bytes: bytes, rate: limits.uplinkRate,
                            burst: limits.burst(for: limits.uplinkRate))
    }

    /// ns to hold the next read from the target after `bytes` of payload toward the client.
    func afterDownlink(_ bytes: Int) -> UInt64 {
        guard limits.downlinkRate > 0 else { return 0 }
        return limiter.take(user: user, uplink: false, bytes: bytes, rate: limits.downlinkRate,
                            burst: limits.burst(for: limits.downlinkRate))
    }

    func release() {
        guard !released else { return }
        released = true
        limiter.release(user: user, source: source)
    }
}
