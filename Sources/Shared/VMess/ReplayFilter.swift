/// Rejects a second use of an AEAD AuthID (vmess-protocol.md §5.5): two exact generations rotated
/// every 120 s, so a value is remembered for 120-240 s, which covers the ±120 s acceptance window.
/// Keyed on the 16 *encrypted* AuthID bytes.
public protocol AuthIDReplayFilter: AnyObject {
    /// Returns true if `id` is new (and records it), false if it was seen before.
    func insert(_ id: AuthIDKey, now: Int64) -> Bool
}

/// 16 bytes as two words: hashable without allocation.
public struct AuthIDKey: Hashable, Sendable {
    public var hi: UInt64
    public var lo: UInt64
    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }
    public init(_ p: UnsafeRawPointer) {
        hi = p.loadUnaligned(as: UInt64.self)
        lo = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    }
    public init(_ bytes: [UInt8]) {
        precondition(bytes.count >= 16)
        self = bytes.withUnsafeBytes { AuthIDKey($0.baseAddress!) }
    }
}

/// The in-process filter. (With several workers the supervisor's shared-memory filter takes its
/// place so that a replay is caught whichever worker it reaches.)
public final class GenerationalReplayFilter: AuthIDReplayFilter {
    public static let generation: Int64 = 120
    private var current = Set<AuthIDKey>()
    private var previous = Set<AuthIDKey>()
    private var rotatedAt: Int64?
    /// Bound on memory: a flood of valid-looking AuthIDs cannot grow the sets without limit.
    private let capacity: Int

    public init(capacity: Int = 1_000_000) { self.capacity = capacity }

    public func insert(_ id: AuthIDKey, now: Int64) -> Bool {
        if let r = rotatedAt {
            if now - r >= 2 * Self.generation {
                previous.removeAll(keepingCapacity: true)
                current.removeAll(keepingCapacity: true)
                rotatedAt = now
            } else if now - r >= Self.generation {
                swap(&previous, &current)
                current.removeAll(keepingCapacity: true)
                rotatedAt = now
            }
        } else {
            rotatedAt = now
        }
        if current.contains(id) || previous.contains(id) { return false }
        // A full filter refuses new entries, reported as a replay (the reference does the same).
        if current.count >= capacity { return false }
        current.insert(id)
        return true
    }
}

/// Duplicate (user, reqKey, reqIV) within 3 minutes (§5.5 "session history"), swept every 30 s.
public final class SessionHistory {
    public struct Key: Hashable {
        var user: Int
        var key: AuthIDKey
        var iv: AuthIDKey
    }
    public static let lifetime: Int64 = 180
    private var entries: [Key: Int64] = [:]
    private var sweptAt: Int64 = 0
    private let capacity: Int

    public init(capacity: Int = 1_000_000) { self.capacity = capacity }

    /// true = new session recorded; false = duplicate (or table full).
    public func insert(user: Int, key: [UInt8], iv: [UInt8], now: Int64) -> Bool {
        if now - sweptAt >= 30 {
            entries = entries.filter { $0.value > now }
            sweptAt = now
        }
        let k = Key(user: user, key: AuthIDKey(key), iv: AuthIDKey(iv))
        if let exp = entries[k], exp > now { return false }
        if entries.count >= capacity { return false }
        entries[k] = now + Self.lifetime
        return true
    }
}
