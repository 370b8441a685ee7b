/// Per-user limits (`"vmessd": {"userLimits": {...}}`), beyond what the peers offer: how many
/// connections a user may hold at once, from how many distinct source addresses (the "device limit"),
/// and how many payload bytes per second each way, all across every worker of the server.
///
///     "userLimits": {
///       "levels": {"0": {"connections": 32, "sourceIPs": 3, "uplinkRate": 1048576, "downlinkRate": 4194304}},
///       "users":  {"alice@example.com": {"sourceIPs": 1, "downlinkRate": 0}}
///     }
///
/// A level's limits apply to each of its users separately; a user's own entry (by email) replaces
/// the fields it names, and 0 lifts a limit its level sets. Rates are bytes per second of payload;
/// `burst` is how many bytes may go at once after a quiet spell (default: one second's worth, at
/// least 64 KiB).
public struct UserLimits: Codable, Equatable, Sendable {
    /// nil: not set here (the level's value, or no limit); 0: no limit.
    public var connections: Int?
    public var sourceIPs: Int?
    public var uplinkRate: Int?
    public var downlinkRate: Int?
    public var burst: Int?

    public init(connections: Int? = nil, sourceIPs: Int? = nil, uplinkRate: Int? = nil, downlinkRate: Int? = nil,
                burst: Int? = nil) {
        self.connections = connections
        self.sourceIPs = sourceIPs
        self.uplinkRate = uplinkRate
        self.downlinkRate = downlinkRate
        self.burst = burst
    }

    /// `other`'s fields where it sets them, ours elsewhere.
    func overridden(by other: UserLimits) -> UserLimits {
        UserLimits(connections: other.connections ?? connections, sourceIPs: other.sourceIPs ?? sourceIPs,
                   uplinkRate: other.uplinkRate ?? uplinkRate, downlinkRate: other.downlinkRate ?? downlinkRate,
                   burst: other.burst ?? burst)
    }

    /// Source addresses one user's entry in shared memory can hold (UserLimitTable): the largest
    /// `sourceIPs` accepted.
    public static let maximumSourceIPs = 16
    public static let maximumRate = 1 << 40
    public static let minimumBurst = 64 * 1024
}

/// The limits one user ends up with; 0 means none.
public struct EffectiveUserLimits: Equatable, Sendable {
    public var connections = 0
    public var sourceIPs = 0
    public var uplinkRate = 0
    public var downlinkRate = 0
    public var burst = 0

    public init() {}

    public var isUnlimited: Bool { connections == 0 && sourceIPs == 0 && uplinkRate == 0 && downlinkRate == 0 }

    /// Bytes one direction may send at once at `rate`.
    public func burst(for rate: Int) -> Int { burst > 0 ? burst : max(rate, UserLimits.minimumBurst) }
}

public struct UserLimitPolicy: Codable, Equatable, Sendable {
    public var levels: [Int: UserLimits] = [:]
    /// By email.
    public var users: [String: UserLimits] = [:]

    public init() {}

    public var isEmpty: Bool { levels.isEmpty && users.isEmpty }

    /// The limits of the user with `email` at `level` (level first, then the user's own entry).
    public func limits(email: String?, level: Int) -> EffectiveUserLimits {
        var merged = levels[level] ?? UserLimits()
        if let email, let own = users[email] { merged = merged.overridden(by: own) }
        var e = EffectiveUserLimits()
        e.connections = merged.connections ?? 0
        e.sourceIPs = merged.sourceIPs ?? 0
        e.uplinkRate = merged.uplinkRate ?? 0
        e.downlinkRate = merged.downlinkRate ?? 0
        e.burst = merged.burst ?? 0
        return e
    }
}
