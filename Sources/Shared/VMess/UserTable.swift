/// The users of one VMess inbound, prepared for matching handshakes:
/// - AEAD: one cached AES-ECB decryptor per user for the AuthID (§5.4: O(users) block decryptions).
/// - Legacy: for users with alterId > 0, a table auth → (user, ts) over every id (primary and alter)
///   and every second of [now-120, now+120], extended every 10 s (§7.2).
public final class UserTable {
    public struct Entry {
        public private(set) var index: Int
        public let id: UserID
        public let alterId: Int
        public let level: Int
        public let email: String?
        /// The name the user's traffic is counted and logged under: the email, else the id's short
        /// text (made once here, not per connection).
        public let key: String
        let authKey: [UInt8]
        let authDecryptor: AESBlock
        let legacyIDs: [[UInt8]]

        init(index: Int, id: UserID, alterId: Int, level: Int, email: String?) throws {
            self.index = index
            self.id = id
            self.alterId = alterId
            self.level = level
            self.email = email
            key = email ?? id.shortText
            authKey = AuthID.key(cmdKey: id.cmdKey)
            authDecryptor = try AESBlock(key: authKey, encrypting: false)
            legacyIDs = alterId > 0 ? [id.bytes] + id.alterIDs(alterId) : []
        }

        /// The same user at another position (a table rebuilt after a runtime change).
        func at(_ index: Int) -> Entry {
            var moved = self
            moved.index = index
            return moved
        }
    }

    public let entries: [Entry]
    /// Every entry's id, for `contains`: asked once per accepted connection, where a scan of
    /// `entries` cost 8 % of a worker's time with 10,000 users.
    private let ids: Set<UserID>
    private let accelerated: Bool
    /// Narrows the users an AEAD AuthID is checked against (batched AES-NI, last user per address).
    let authMatcher: AuthIDMatcher
    private var legacy: [AuthIDKey: (entry: Int, time: Int64)] = [:]
    private var tainted = Set<AuthIDKey>()
    private var legacyFrom: Int64 = 0
    private var legacyTo: Int64 = -1
    private var legacyRefreshedAt: Int64?
    public let hasLegacyUsers: Bool
    /// Per-server stable anti-probing threshold base (§11.1).
    public let drainBase: Int
    public let drainRandomMax: Int

    /// `acceleratedAuthMatching`: the AES-NI scan where the CPU has it (tests run both paths).
    public init(users: [(id: UserID, alterId: Int, level: Int, email: String?)],
                acceleratedAuthMatching: Bool = AuthIDMatcher.hasAESNI) throws {
        var entries: [Entry] = []
        for (i, u) in users.enumerated() {
            entries.append(try Entry(index: i, id: u.id, alterId: u.alterId, level: u.level, email: u.email))
        }
        self.entries = entries
        ids = Set(entries.map(\.id))
        accelerated = acceleratedAuthMatching
        authMatcher = AuthIDMatcher(authKeys: entries.map(\.authKey), accelerated: acceleratedAuthMatching)
        hasLegacyUsers = entries.contains { $0.alterId > 0 }
        // The drain threshold must be stable per server (so it cannot be probed by its variance) but
        // differ between servers: derive it from the user ids, like the reference (not bit-exactly).
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for e in entries {
            for b in Digest.hmacSHA256(key: Array("VMESSBSKDF".utf8), e.id.bytes) {
                seed = (seed ^ UInt64(b)) &* 0x0000_0100_0000_01B3
            }
        }
        var rng = SplitMix64(seed: seed)
        drainBase = Int(rng.next() % 3266)
        drainRandomMax = Int(rng.next() % 64) + 1
    }

    /// A table of `entries` (re-indexed) that keeps `previous`'s drain threshold: a runtime change of
    /// users must not change how the server answers probes.
    private init(entries: [Entry], keepingDrainOf previous: UserTable) {
        self.entries = entries.enumerated().map { $1.at($0) }
        ids = Set(self.entries.map(\.id))
        accelerated = previous.accelerated
        authMatcher = AuthIDMatcher(authKeys: self.entries.map(\.authKey), accelerated: accelerated)
        hasLegacyUsers = self.entries.contains { $0.alterId > 0 }
        drainBase = previous.drainBase
        drainRandomMax = previous.drainRandomMax
    }

    /// This table plus one user: only the new user's keys are derived (a panel adding thousands
    /// of users one by one must not rederive every user's each time).
    public func adding(id: UserID, alterId: Int, level: Int, email: String?) throws -> UserTable {
        UserTable(entries: entries + [try Entry(index: entries.count, id: id, alterId: alterId, level: level, email: email)],
                  keepingDrainOf: self)
    }

    /// This table without the users whose email is `email`.
    public func removing(email: String) -> UserTable {
        UserTable(entries: entries.filter { $0.email != email }, keepingDrainOf: self)
    }

    public convenience init(settings: VMessInboundSettings) throws {
        try self.init(users: settings.users.map { u in
            guard let id = UserID(text: u.id) else { throw InvalidUserID(text: u.id) }
            return (id, u.alterId, u.level, u.email)
        })
    }

    /// Whether some entry has `id`.
    public func contains(_ id: UserID) -> Bool { ids.contains(id) }

    /// Total bytes to consume before closing a rejected connection: 16 + 38 + base + rand(max).
    public func drainSize() -> Int { 16 + 38 + drainBase + Int.random(in: 0..<drainRandomMax) }

    // MARK: legacy

    /// Looks up a legacy auth value. Refreshes the table at most every 10 s.
    func legacyLookup(_ auth: AuthIDKey, now: Int64) -> (entry: Int, time: Int64)? {
        guard hasLegacyUsers else { return nil }
        refreshLegacy(now: now)
        guard !tainted.contains(auth), let hit = legacy[auth] else { return nil }
        return hit
    }

    func taint(_ auth: AuthIDKey) { if legacy[auth] != nil { tainted.insert(auth) } }

    /// Tainted legacy auth values held (statistics, tests).
    var taintedCount: Int { tainted.count }

    /// Leaves the table as a fresh one would be at the same clock, without recomputing its ~500
    /// HMACs: the legacy fuzz target taints on most inputs and must not carry that to the next one.
    func forgetTaints() { tainted.removeAll(keepingCapacity: true) }

    private func refreshLegacy(now: Int64) {
        if let r = legacyRefreshedAt, now - r < 10, now >= r { return }
        legacyRefreshedAt = now
        let from = now - 120, to = now + 120
        if legacyTo < from || legacyFrom > to {
            legacy.removeAll(keepingCapacity: true)
            tainted.removeAll()
            legacyFrom = from
            legacyTo = from - 1
        }
        // Drop seconds older than now-120, add seconds up to now+120.
        if legacyFrom < from {
            legacy = legacy.filter { $0.value.time >= from }
            // A taint only ever names a live table entry, so the set stays bounded by the table:
            // forget those whose second has left the window.
            tainted = tainted.filter { legacy[$0] != nil }
            legacyFrom = from
        }
        var t = max(legacyTo + 1, from)
        while t <= to {
            for e in entries where e.alterId > 0 {
                for id in e.legacyIDs {
                    legacy[AuthIDKey(LegacyHeader.auth(id: id, time: t))] = (e.index, t)
                }
            }
            t += 1
        }
        legacyTo = to
    }
}

public struct InvalidUserID: Error {
    public var text: String
    public init(text: String) { self.text = text }
}


